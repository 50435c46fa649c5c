package main

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"syscall"
	"time"
)

// diskProbe times, while a phase runs, what every commit waits for at least once: an
// 8 kB write and fdatasync (PostgreSQL's wal_sync_method on Linux) of a file on the
// disk that holds the cluster, every 10 ms. A write case's p99 cannot be lower than
// what the disk makes its commits wait (-disk).
type diskProbe struct {
	stop chan struct{}
	done chan struct{}
	lat  []time.Duration
	err  error
}

// diskResult is the probe's latency distribution.
type diskResult struct {
	n               int
	p50, p99, worst time.Duration
}

func startDiskProbe(dir string) *diskProbe {
	p := &diskProbe{stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(p.done)
		path := filepath.Join(dir, "disk-probe")
		f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY, 0o600)
		if err != nil {
			p.err = err
			return
		}
		defer os.Remove(path)
		defer f.Close()
		block := make([]byte, 8192)
		tick := time.NewTicker(10 * time.Millisecond)
		defer tick.Stop()
		for i := 0; ; i++ {
			select {
			case <-p.stop:
				return
			case <-tick.C:
			}
			start := time.Now()
			if _, err := f.WriteAt(block, int64(i%128)*8192); err != nil {
				p.err = err
				return
			}
			if err := syscall.Fdatasync(int(f.Fd())); err != nil {
				p.err = err
				return
			}
			p.lat = append(p.lat, time.Since(start))
		}
	}()
	return p
}

func (p *diskProbe) finish() (*diskResult, error) {
	close(p.stop)
	<-p.done
	if p.err != nil {
		return nil, fmt.Errorf("disk probe: %w", p.err)
	}
	if len(p.lat) == 0 {
		return nil, fmt.Errorf("disk probe: no sample")
	}
	slices.Sort(p.lat)
	at := func(q float64) time.Duration { return p.lat[int(q*float64(len(p.lat)-1))] }
	return &diskResult{n: len(p.lat), p50: at(0.5), p99: at(0.99), worst: p.lat[len(p.lat)-1]}, nil
}

func (d *diskResult) String() string {
	f := func(t time.Duration) string { return fmt.Sprintf("%.2f", float64(t.Microseconds())/1000) }
	return fmt.Sprintf("disk during the half peak (8 kB write + fdatasync every 10 ms, %d samples): p50 %s ms p99 %s ms max %s ms",
		d.n, f(d.p50), f(d.p99), f(d.worst))
}
