/** `/ui/style.css`: the dashboard's stylesheet (light and dark, system fonts, no external resources). */
export const UI_CSS = `:root {
  color-scheme: light dark;
  --bg: #f7f7f5;
  --fg: #1c1c1a;
  --muted: #6b6b66;
  --card: #ffffff;
  --line: #deded8;
  --accent: #c2410c;
  --ready: #15803d;
  --booting: #ca8a04;
  --allocated: #2563eb;
  --bad: #b91c1c;
  font: 14px/1.45 system-ui, -apple-system, 'Segoe UI', Roboto, sans-serif;
}
@media (prefers-color-scheme: dark) {
  :root { --bg: #161614; --fg: #e8e8e3; --muted: #9a9a92; --card: #20201d; --line: #34342f; }
}
[hidden] { display: none !important; }
* { box-sizing: border-box; }
body { margin: 0; background: var(--bg); color: var(--fg); }
header { display: flex; align-items: center; gap: 12px; padding: 10px 20px; border-bottom: 1px solid var(--line); background: var(--card); }
header h1 { font-size: 16px; margin: 0; flex: 0 0 auto; }
header h1 small { color: var(--muted); font-weight: normal; }
#poll-error { color: var(--bad); flex: 1; }
#sign-out { margin-left: auto; }
main { padding: 16px 20px; max-width: 1200px; }
section { margin-bottom: 22px; }
h2 { font-size: 15px; margin: 0 0 8px; }
h2 small, h3 small { color: var(--muted); font-weight: normal; }
h3 { font-size: 14px; margin: 0 0 6px; }
code, td.id, .id { font-family: ui-monospace, 'SFMono-Regular', Menlo, Consolas, monospace; font-size: 13px; }
table { border-collapse: collapse; width: 100%; background: var(--card); border: 1px solid var(--line); }
th, td { text-align: left; padding: 5px 10px; border-bottom: 1px solid var(--line); white-space: nowrap; }
th { font-weight: 600; color: var(--muted); font-size: 12px; text-transform: uppercase; letter-spacing: 0.03em; }
td.note { color: var(--muted); white-space: normal; }
.num { text-align: right; font-variant-numeric: tabular-nums; }
td.ready { color: var(--ready); font-weight: 600; }
td.booting { color: var(--booting); }
td.allocated { color: var(--allocated); }
#vms-body tr { cursor: pointer; }
#vms-body tr:hover, #vms-body tr.selected { background: color-mix(in srgb, var(--allocated) 10%, transparent); }
td.state[data-state='failed'], td.state[data-state='stopped'] { color: var(--bad); }
.seg-ready { fill: var(--ready); }
.seg-booting { fill: var(--booting); }
.seg-allocated { fill: var(--allocated); }
.badge { padding: 2px 8px; border-radius: 10px; font-size: 12px; background: var(--line); }
.badge[data-state='live'] { background: var(--ready); color: #fff; }
.badge[data-state='reconnecting'] { background: var(--booting); color: #fff; }
.cards { display: flex; flex-wrap: wrap; gap: 12px; }
.card { background: var(--card); border: 1px solid var(--line); border-radius: 6px; padding: 10px 14px; min-width: 300px; }
.card dl { display: grid; grid-template-columns: repeat(4, auto auto); gap: 2px 8px; margin: 0 0 6px; justify-content: start; }
.card dt { color: var(--muted); }
.card dd { margin: 0; font-variant-numeric: tabular-nums; font-weight: 600; }
.spark polyline { stroke: var(--accent); stroke-width: 1.5; }
.spark { display: block; background: color-mix(in srgb, var(--line) 35%, transparent); border-radius: 3px; }
ol.recent { margin: 6px 0 0; padding-left: 18px; color: var(--muted); font-size: 12px; }
ol.recent .ms { color: var(--fg); font-weight: 600; }
.empty { color: var(--muted); font-style: italic; }
#alerts { list-style: none; margin: 0; padding: 0; }
#alerts li { padding: 6px 10px; border-left: 4px solid var(--line); background: var(--card); margin-bottom: 4px; }
#alerts li.firing { border-left-color: var(--bad); }
#alerts li.pending { border-left-color: var(--booting); }
#alerts li small { color: var(--muted); }
#vm-detail { margin-top: 10px; background: var(--card); border: 1px solid var(--line); border-radius: 6px; padding: 10px 14px; }
#vm-detail dl { display: grid; grid-template-columns: max-content 1fr; gap: 2px 12px; margin: 0 0 8px; }
#vm-detail dt { color: var(--muted); }
#vm-detail dd { margin: 0; overflow-wrap: anywhere; }
#vm-detail .close { float: right; }
svg.phases text { font-size: 11px; fill: var(--fg); }
svg.phases rect { fill: var(--allocated); }
#event-log { list-style: none; margin: 0; padding: 0; font-size: 12px; max-height: 260px; overflow: auto; background: var(--card); border: 1px solid var(--line); }
#event-log li { padding: 2px 10px; border-bottom: 1px solid var(--line); overflow-wrap: anywhere; }
#event-log time { color: var(--muted); }
#event-log .type { font-weight: 600; }
#login form { max-width: 520px; background: var(--card); border: 1px solid var(--line); border-radius: 6px; padding: 16px 20px; }
#login label { display: block; font-weight: 600; margin-bottom: 4px; }
#login input { width: 100%; padding: 6px 8px; font: inherit; margin-bottom: 10px; }
#login-error { color: var(--bad); }
button { font: inherit; padding: 4px 12px; cursor: pointer; }
`;
