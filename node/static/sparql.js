// The node's SPARQL editor: YASGUI (vendored, served by this node) on this node's /sparql.
// Queries go to the same origin with the browser's session; the scope is the caller's, and a
// result cut at store.max_results is announced from the DSGO-Result-Truncated header.
(function () {
  "use strict";
  var root = document.getElementById("yasgui");
  var status = document.getElementById("sparql-status");
  var endpoint = window.location.origin + "/sparql";
  // A login session's POSTs carry its CSRF token (a bearer-token caller gets none and needs none).
  var csrf = root.getAttribute("data-csrf");
  var headers = csrf ? { "X-CSRF-Token": csrf } : {};
  Yasgui.Yasqe.defaults.autocompleters = ["prefixes", "variables"]; // nothing fetched elsewhere
  var yasgui = new Yasgui(root, {
    requestConfig: { endpoint: endpoint, method: "POST", headers: headers },
    copyEndpointOnNewTab: false,
    endpointCatalogueOptions: {
      getData: function () {
        return [{ endpoint: endpoint }];
      },
    },
    persistenceId: null,
    populateFromUrl: false,
    yasqe: { value: root.getAttribute("data-query") },
  });
  window.dsgoYasgui = yasgui;

  function show(text, bad) {
    status.textContent = text;
    status.className = bad ? "bad" : "ok";
  }

  function watch(tab) {
    var yasqe = tab.getYasqe();
    if (!yasqe || yasqe.dsgoWatched) return;
    yasqe.dsgoWatched = true;
    yasqe.on("query", function () {
      show("running…", false);
    });
    yasqe.on("queryResponse", function (_yasqe, response, duration) {
      if (!response || !response.headers) {
        show("the query failed: " + (response && response.message ? response.message : "no answer"), true);
        return;
      }
      var rows = "";
      try {
        var data = JSON.parse(response.content);
        if (data.results && data.results.bindings) rows = data.results.bindings.length + " rows";
        else if (typeof data.boolean === "boolean") rows = "answer: " + data.boolean;
      } catch (e) {
        rows = "a graph";
      }
      var cut = response.headers.get("DSGO-Result-Truncated");
      var text = rows + " in " + duration + " ms";
      if (cut) text += " — truncated by the node (" + cut + "): refine the query or add LIMIT";
      show(text, !!cut);
      status.setAttribute("data-truncated", cut ? cut : "");
    });
  }

  watch(yasgui.getTab());
  yasgui.on("tabSelect", function (instance, id) {
    window.setTimeout(function () {
      watch(instance.getTab(id));
    }, 0);
  });
})();
