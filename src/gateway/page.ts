/**
 * The live page at `/`: plain HTML, one style sheet and one script (no inline script or style, as
 * the Content-Security-Policy requires), no build step and nothing fetched from outside
 * the gateway (lightweight-charts is served from node_modules by the gateway), so it works offline.
 * Kept as strings so that `npm run build` ships it inside dist/ with the code.
 */

export const PAGE_HTML = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Bar pipeline: live</title>
<link rel="stylesheet" href="/assets/page.css">
</head>
<body>
<header>
  <h1>Bar pipeline: live</h1>
  <input id="key" type="password" placeholder="API key (viewer)" autocomplete="off" size="28" aria-label="API key">
  <input id="syms" placeholder="symbols, e.g. BTCUSD,ETHUSD" size="30" aria-label="symbols">
  <button id="connect">Connect</button>
  <span id="status" data-testid="status">paste a key and the symbols, then Connect</span>
</header>
<div id="stats" data-testid="stats">
  <span>bars/s <b id="s-rate">-</b></span>
  <span>latency p50 <b id="s-p50">-</b> p99 <b id="s-p99">-</b></span>
  <span>dead letters <b id="s-dlq">-</b></span>
  <span>model <b id="s-model">-</b></span>
  <span>breakers <b id="s-breakers">-</b></span>
  <span>strategic 30m bars/s <b id="s-srate">-</b></span>
</div>
<div id="symbols"></div>
<footer class="attribution">Charts by <a href="https://www.tradingview.com/lightweight-charts/" rel="noopener noreferrer">TradingView Lightweight Charts™</a></footer>
<script src="/assets/lightweight-charts.js"></script>
<script src="/assets/page.js"></script>
</body>
</html>
`;

/** The page's styles, served as /assets/page.css (the Content-Security-Policy allows no inline style). */
export const PAGE_CSS = `:root { color-scheme: dark; --bg:#0f1419; --panel:#171d24; --line:#2a323c; --text:#d6dde6; --dim:#8a96a3; }
* { box-sizing: border-box; }
body { margin:0; font: 14px/1.4 system-ui, sans-serif; background:var(--bg); color:var(--text); }
header { display:flex; gap:12px; align-items:center; padding:10px 16px; border-bottom:1px solid var(--line); flex-wrap:wrap; }
header h1 { font-size:16px; margin:0 12px 0 0; }
input { background:var(--panel); color:var(--text); border:1px solid var(--line); border-radius:4px; padding:6px 8px; }
button { background:#2b6cb0; color:white; border:0; border-radius:4px; padding:7px 12px; cursor:pointer; }
#status { color:var(--dim); }
#stats { display:flex; gap:18px; padding:8px 16px; border-bottom:1px solid var(--line); flex-wrap:wrap; color:var(--dim); }
#stats b { color:var(--text); font-weight:600; }
.open { color:#f56565 !important; } .half_open { color:#ecc94b !important; } .closed { color:#48bb78 !important; }
#symbols { display:grid; grid-template-columns: repeat(auto-fit, minmax(560px, 1fr)); gap:12px; padding:12px 16px; }
.card { background:var(--panel); border:1px solid var(--line); border-radius:6px; padding:10px; }
.card h2 { margin:0 0 6px; font-size:15px; display:flex; gap:12px; align-items:baseline; }
.card .facts { color:var(--dim); font-size:13px; display:flex; gap:14px; flex-wrap:wrap; margin-bottom:6px; }
.card .facts b { color:var(--text); }
.chart { height:320px; }
.legend { color:var(--dim); font-size:12px; margin-top:4px; }
.sw { display:inline-block; width:10px; height:10px; margin:0 3px 0 8px; border-radius:2px; }
.attribution { color:var(--dim); font-size:12px; padding:4px 16px 12px; }
.attribution a { color:var(--dim); }
.sw-bull { background:#48bb78; } .sw-bear { background:#f56565; } .sw-sideways { background:#a0aec0; } .sw-volatile { background:#ecc94b; }
`;

export const PAGE_SCRIPT = String.raw`'use strict';
(function () {
  var LWC = window.LightweightCharts;
  var REGIME_COLORS = { BULL: 'rgba(72,187,120,0.18)', BEAR: 'rgba(245,101,101,0.18)', SIDEWAYS: 'rgba(160,174,192,0.12)', VOLATILE: 'rgba(236,201,75,0.20)' };
  var MAX_POINTS = 2000;
  var state = { socket: null, symbols: {}, stats: null };
  // What the page has drawn, for tests and for a person in the console.
  window.__gateway = { bars: {}, frames: 0, stats: 0 };

  var $ = function (id) { return document.getElementById(id); };
  var keyInput = $('key');
  var symsInput = $('syms');
  keyInput.value = sessionStorage.getItem('gatewayKey') || '';
  var params = new URLSearchParams(location.search);
  symsInput.value = params.get('symbols') || sessionStorage.getItem('gatewaySymbols') || '';

  function setStatus(text) { $('status').textContent = text; }
  function fmt(v, digits) { return v === null || v === undefined ? '-' : Number(v).toFixed(digits); }

  function card(symbol) {
    if (state.symbols[symbol]) return state.symbols[symbol];
    var el = document.createElement('div');
    el.className = 'card';
    el.setAttribute('data-symbol', symbol);
    el.innerHTML = '<h2><span class="name"></span><span class="facts regime"></span></h2>' +
      '<div class="facts"><span>close <b class="f-close">-</b></span><span>confidence <b class="f-conf">-</b></span>' +
      '<span>uncertainty <b class="f-unc">-</b></span><span>action <b class="f-act">-</b></span>' +
      '<span>target <b class="f-target">-</b></span><span>combined <b class="f-comb">-</b></span>' +
      '<span>latency <b class="f-lat">-</b> ms</span><span>degraded <b class="f-deg">-</b></span></div>' +
      '<div class="chart"></div><div class="legend">candles from the results: close, opened at the previous close (results carry no high/low);' +
      ' band = regime<span class="sw sw-bull"></span>BULL<span class="sw sw-bear"></span>BEAR' +
      '<span class="sw sw-sideways"></span>SIDEWAYS<span class="sw sw-volatile"></span>VOLATILE; arrows = LONG/SHORT decisions</div>';
    el.querySelector('.name').textContent = symbol;
    $('symbols').appendChild(el);
    var chart = LWC.createChart(el.querySelector('.chart'), {
      autoSize: true,
      // The logo injects an inline <style> the Content-Security-Policy blocks: attribution is in the footer instead.
      layout: { background: { color: '#171d24' }, textColor: '#d6dde6', attributionLogo: false },
      grid: { vertLines: { color: '#222a33' }, horzLines: { color: '#222a33' } },
      timeScale: { timeVisible: true, secondsVisible: false },
    });
    var bands = chart.addSeries(LWC.HistogramSeries, { priceScaleId: 'regime', priceLineVisible: false, lastValueVisible: false });
    chart.priceScale('regime').applyOptions({ scaleMargins: { top: 0, bottom: 0 }, visible: false });
    var candles = chart.addSeries(LWC.CandlestickSeries, { upColor: '#48bb78', downColor: '#f56565', wickUpColor: '#48bb78', wickDownColor: '#f56565', borderVisible: false });
    var markers = LWC.createSeriesMarkers(candles, []);
    var entry = { el: el, chart: chart, bands: bands, candles: candles, markers: markers, markerList: [], lastTs: -1, lastClose: null, lastAction: null, count: 0 };
    state.symbols[symbol] = entry;
    window.__gateway.bars[symbol] = 0;
    return entry;
  }

  function addResult(r) {
    var e = card(r.symbol);
    if (r.ts <= e.lastTs) return; // already drawn (history and stream overlap)
    var time = Math.floor(r.ts / 1000);
    var open = e.lastClose === null ? r.close : e.lastClose;
    e.candles.update({ time: time, open: open, high: Math.max(open, r.close), low: Math.min(open, r.close), close: r.close });
    var regime = r.strategic && r.strategic.regime;
    e.bands.update(regime ? { time: time, value: 1, color: REGIME_COLORS[regime] } : { time: time });
    var act = r.actions && r.actions.tactical;
    if (act && act !== e.lastAction && act !== 'FLAT') {
      e.markerList.push(act === 'LONG'
        ? { time: time, position: 'belowBar', color: '#48bb78', shape: 'arrowUp', text: 'LONG' }
        : { time: time, position: 'aboveBar', color: '#f56565', shape: 'arrowDown', text: 'SHORT' });
      if (e.markerList.length > 300) e.markerList.shift();
      e.markers.setMarkers(e.markerList);
    }
    e.lastAction = act;
    e.lastTs = r.ts;
    e.lastClose = r.close;
    e.count++;
    window.__gateway.bars[r.symbol] = e.count;
    var q = function (sel) { return e.el.querySelector(sel); };
    q('.regime').textContent = regime ? regime + (r.strategic.stale ? ' (stale)' : '') : 'regime warming up';
    q('.f-close').textContent = String(r.close);
    q('.f-conf').textContent = (r.strategic && r.strategic.confidence) || '-';
    q('.f-unc').textContent = fmt(r.strategic && r.strategic.uncertainty, 3);
    q('.f-act').textContent = act ? act + ' ' + fmt(r.actions.risk, 2) + ' ' + r.actions.execution : '-';
    q('.f-target').textContent = fmt(r.target_position, 3);
    q('.f-comb').textContent = fmt(r.combined_confidence, 3);
    q('.f-lat').textContent = fmt(r.latency_ms, 1);
    q('.f-deg').textContent = r.degraded.length === 0 ? 'none' : r.degraded.join(', ');
  }

  function showStats(s) {
    window.__gateway.stats++;
    var t = s.tactical || {};
    $('s-rate').textContent = fmt(t.bars_per_second, 1);
    $('s-p50').textContent = t.latency_ms_p50 === null || t.latency_ms_p50 === undefined ? '-' : fmt(t.latency_ms_p50, 1) + ' ms';
    $('s-p99').textContent = t.latency_ms_p99 === null || t.latency_ms_p99 === undefined ? '-' : fmt(t.latency_ms_p99, 1) + ' ms';
    $('s-dlq').textContent = t.dead_letters === null || t.dead_letters === undefined ? '-' : String(t.dead_letters);
    $('s-model').textContent = t.model_version || '-';
    $('s-srate').textContent = fmt(s.strategic && s.strategic.bars_per_second, 2);
    var b = $('s-breakers');
    b.textContent = '';
    var all = Object.assign({}, (s.strategic || {}).breakers || {}, t.breakers || {});
    var names = Object.keys(all).sort();
    if (names.length === 0) b.textContent = 'none reported';
    names.forEach(function (name) {
      var span = document.createElement('span');
      span.className = all[name];
      span.textContent = name + ':' + all[name] + ' ';
      b.appendChild(span);
    });
  }

  async function loadHistory(symbol, key) {
    var res = await fetch('/api/results/' + encodeURIComponent(symbol) + '?limit=1000', { headers: { Authorization: 'Bearer ' + key } });
    if (res.status === 401 || res.status === 403) throw new Error('the key was refused (' + res.status + ')');
    if (!res.ok) throw new Error('results of ' + symbol + ': HTTP ' + res.status);
    var list = await res.json();
    card(symbol);
    list.forEach(addResult);
  }

  async function connect() {
    var key = keyInput.value.trim();
    var symbols = symsInput.value.split(',').map(function (s) { return s.trim(); }).filter(Boolean);
    if (!key || symbols.length === 0) { setStatus('paste a key and at least one symbol'); return; }
    sessionStorage.setItem('gatewayKey', key);
    sessionStorage.setItem('gatewaySymbols', symbols.join(','));
    if (state.socket) { var old = state.socket; state.socket = null; old.close(1000); }
    // The key never goes into a URL: it buys a single-use ticket (valid 30 s) for this one socket.
    setStatus('connecting...');
    var ticket;
    try {
      var res = await fetch('/api/ws-ticket', { method: 'POST', headers: { Authorization: 'Bearer ' + key } });
      if (res.status === 401 || res.status === 403) { setStatus('the key was refused (' + res.status + ')'); return; }
      if (!res.ok) throw new Error('ticket: HTTP ' + res.status);
      ticket = (await res.json()).ticket;
    } catch (err) { setStatus(String(err.message || err) + '; reconnecting'); setTimeout(connect, 5000); return; }
    var proto = location.protocol === 'https:' ? 'wss:' : 'ws:';
    var url = proto + '//' + location.host + '/ws?stats=1&symbols=' + encodeURIComponent(symbols.join(',')) + '&ticket=' + encodeURIComponent(ticket);
    var socket = new WebSocket(url);
    state.socket = socket;
    // The socket opens before the history is fetched and holds its frames until the history is
    // drawn: a result published between the two is in one of them (addResult drops repeats), never
    // in neither.
    var pending = [];
    socket.onopen = async function () {
      setStatus('loading recent results...');
      try {
        for (var i = 0; i < symbols.length; i++) await loadHistory(symbols[i], key);
      } catch (err) {
        if (state.socket === socket) state.socket = null;
        socket.close(1000);
        setStatus(String(err.message || err));
        return;
      }
      var held = pending;
      pending = null;
      held.forEach(addResult);
      setStatus('live: ' + symbols.join(', '));
    };
    socket.onmessage = function (ev) {
      var msg = JSON.parse(ev.data);
      if (msg.type === 'stats') { showStats(msg); return; }
      window.__gateway.frames++;
      if (pending !== null) pending.push(msg);
      else addResult(msg);
    };
    socket.onclose = function (ev) {
      if (state.socket !== socket) return;
      setStatus(ev.code === 1013 ? 'disconnected: this page fell behind (1013); reconnecting' : 'disconnected (' + ev.code + '); reconnecting');
      setTimeout(connect, 2000);
    };
  }

  $('connect').addEventListener('click', function () { connect(); });
  if (keyInput.value && symsInput.value) connect();
})();
`;
