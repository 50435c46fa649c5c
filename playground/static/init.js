// Starts GraphiQL on the page of playground.Handler. A separate file, not an inline
// script, so that the page's Content-Security-Policy can be script-src 'self'.
//
// The Headers editor starts with {"Authorization": "Bearer <paste token>"}; requests
// leave that placeholder out, so the schema (introspection) loads before a token is
// pasted. Opening the page as /#token=<token> pre-fills the header with that token
// (the fragment never reaches the server, and it is removed from the address bar).
(function () {
  'use strict';
  var root = document.getElementById('graphiql');
  var placeholder = 'Bearer <paste token>';

  var token = new URLSearchParams(location.hash.slice(1)).get('token');
  if (location.hash) {
    history.replaceState(null, '', location.pathname + location.search);
  }
  var headers = JSON.stringify({ Authorization: token ? 'Bearer ' + token.trim() : placeholder }, null, 2);

  var endpoint = new URL(root.dataset.endpoint, location.href);
  var socket = new URL(endpoint.href);
  socket.protocol = endpoint.protocol === 'https:' ? 'wss:' : 'ws:';
  var base = GraphiQL.createFetcher({ url: endpoint.href, subscriptionUrl: socket.href });

  // Requests carry the Headers editor's headers, but for the placeholder. Subscriptions
  // go over WebSocket (graphql-transport-ws), where a browser cannot set headers:
  // GraphiQL sends them as the connection_init payload, where the server reads
  // {"Authorization": "Bearer <token>"}.
  function fetcher(params, opts) {
    var given = (opts && opts.headers) || {};
    var sent = {};
    Object.keys(given).forEach(function (k) {
      if (!(k.toLowerCase() === 'authorization' && given[k] === placeholder)) {
        sent[k] = given[k];
      }
    });
    return base(params, Object.assign({}, opts, { headers: sent }));
  }

  var props = {
    fetcher: fetcher,
    defaultHeaders: headers,
    defaultEditorToolsVisibility: 'headers',
    defaultQuery: '# Put your token in the Headers tab below,\n# then run this with Ctrl-Enter.\n' +
      '{\n  viewer {\n    handle\n    name\n  }\n}\n',
  };
  if (token) {
    props.headers = headers; // replaces headers kept from an earlier visit
  }
  ReactDOM.createRoot(root).render(React.createElement(GraphiQL, props));
})();
