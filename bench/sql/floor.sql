-- (0): the viewer lookup every authenticated request makes.
SELECT id, handle, name, headline, plan, connection_count, created_at FROM members WHERE handle = :handle;
