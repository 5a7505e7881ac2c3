/**
 * `/ui`: the dashboard's HTML. No inline script or style (the CSP allows
 * only same-origin assets); the page is an empty frame that `/ui/app.js`
 * fills from the API.
 */
export const UI_HTML = `<!doctype html>
<html lang="en">
  <head>
    <meta charset="utf-8">
    <meta name="viewport" content="width=device-width, initial-scale=1">
    <meta name="referrer" content="no-referrer">
    <title>tfc dashboard</title>
    <link rel="icon" href="/ui/favicon.svg" type="image/svg+xml">
    <link rel="stylesheet" href="/ui/style.css">
    <script type="module" src="/ui/app.js"></script>
  </head>
  <body>
    <header>
      <h1>terraphim-firecracker <small id="version"></small></h1>
      <span id="events-status" class="badge"></span>
      <span id="poll-error" role="status"></span>
      <button id="sign-out" type="button" hidden>Forget token</button>
    </header>
    <noscript>The dashboard needs JavaScript; the same data is in the REST API (docs/api.md).</noscript>
    <main>
      <section id="login" hidden>
        <form id="login-form" autocomplete="off">
          <h2>API token</h2>
          <p>The daemon's bearer token: <code>TFC_TOKEN</code>, or the file <code>DATA_DIR/api-token</code> whose path <code>tfc serve</code> prints at start.
            It is kept in this tab's session storage only and sent to this daemon as <code>Authorization: Bearer</code>.</p>
          <label for="token">Token</label>
          <input id="token" name="token" type="password" required spellcheck="false">
          <button type="submit">Open dashboard</button>
          <p id="login-error" role="alert"></p>
        </form>
      </section>
      <div id="dashboard" hidden>
        <section id="pools-section">
          <h2>Pools</h2>
          <table id="pools">
            <thead><tr><th>pool</th><th>profile</th><th class="num">ready</th><th class="num">booting</th><th class="num">allocated</th><th class="num">target</th><th></th><th></th></tr></thead>
            <tbody id="pools-body"></tbody>
          </table>
          <p id="pools-empty" class="empty" hidden>no pools configured</p>
        </section>
        <section id="latency-section">
          <h2>Latency <small>(the last 200 of each kind: the daemon's recent events, then live)</small></h2>
          <div id="latency" class="cards"></div>
        </section>
        <section id="alerts-section">
          <h2>Alerts</h2>
          <ul id="alerts"></ul>
        </section>
        <section id="vms-section">
          <h2>VMs <small id="vm-count"></small></h2>
          <table id="vms">
            <thead><tr><th>id</th><th>state</th><th>allocation</th><th>pool</th><th>profile</th><th>owner</th><th class="num">ready in</th></tr></thead>
            <tbody id="vms-body"></tbody>
          </table>
          <p id="vms-empty" class="empty" hidden>no VMs</p>
          <div id="vm-detail" hidden></div>
        </section>
        <section id="events-section">
          <h2>Recent events</h2>
          <ol id="event-log"></ol>
        </section>
      </div>
    </main>
  </body>
</html>
`;

/** `/ui/favicon.svg`: a small mark, so the browser's favicon request is not a 404. */
export const UI_FAVICON_SVG = `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 16 16"><rect width="16" height="16" rx="3" fill="#c2410c"/><path d="M8 2 4 9h3l-1 5 5-8H8l1-4z" fill="#fff"/></svg>
`;
