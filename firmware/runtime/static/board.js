// The board view: draws the board from the daemon's snapshot, follows its
// events, and sends key presses back. No framework, no build step.
//
// Lamps: each lamp element carries its cadence (data-cadence); whether it is
// lit comes from ONE interrupter, the same function of the daemon's clock the
// daemon uses, toggling two classes on <body>. So every flashing or winking
// lamp on the page is in step, with each other and with the board.
"use strict";

(() => {
  const FLASH_PERIOD = 1.0, FLASH_ON = 0.5, WINK_PERIOD = 0.5, WINK_ON = 0.4;
  const COMPACT_LINES = 24;         // more lines than this: the compact grid
  const LOG_MAX = 60;
  const TOKEN = new URLSearchParams(location.search).get("token");

  const $ = (id) => document.getElementById(id);
  const el = (tag, cls, text) => {
    const e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined) e.textContent = text;
    return e;
  };

  let snap = null;                  // the last snapshot, with events applied
  let builtFor = null;              // which board the DOM was built for
  let clockOffset = 0;              // daemon clock - performance.now()/1000
  const keyEls = new Map();         // key name -> [elements]
  const lampEls = new Map();        // lamp name -> [elements]
  const lineEls = new Map();        // line number -> cell
  const heldLocally = new Set();    // keys this page is holding down
  let lastDial = null;              // the log entry digits are being added to

  // -- the one interrupter --------------------------------------------------
  const mod = (a, n) => ((a % n) + n) % n;
  const daemonNow = () => performance.now() / 1000 + clockOffset;
  let flashOn = null, winkOn = null;
  function interrupter() {
    const t = daemonNow();
    const f = mod(t, FLASH_PERIOD) < FLASH_ON, w = mod(t, WINK_PERIOD) < WINK_ON;
    if (f !== flashOn) { flashOn = f; document.body.classList.toggle("flash-on", f); }
    if (w !== winkOn) { winkOn = w; document.body.classList.toggle("wink-on", w); }
    // Sleep until just after the next edge: flash edges at 0 and 0.5 s,
    // wink edges at 0 and 0.4 s of each half second.
    const p = mod(t, WINK_PERIOD);
    const next = (p < WINK_ON ? WINK_ON - p : WINK_PERIOD - p) + 0.002;
    setTimeout(interrupter, Math.min(next, 0.1) * 1000);
  }
  // The daemon's clock, read over HTTP: the reading was taken somewhere
  // between sending and receiving, so take the middle, and trust the quickest
  // round trip most (both clocks are monotonic, so an old good reading stays
  // good; a busy machine's slow reply does not move it). The event stream's
  // first snapshot gives an untimed first guess until the timed ones come.
  let bestRtt = Infinity, bestAt = -Infinity, clockReadings = 0;
  function syncClock(daemonTime, sentAt, receivedAt) {
    const rtt = receivedAt - sentAt;              // ms; 0: not timed
    const now = performance.now();
    if (rtt <= 0) {
      if (bestRtt === Infinity) clockOffset = daemonTime - receivedAt / 1000;
      return;
    }
    if (rtt <= bestRtt * 1.5 + 2 || now - bestAt > 60000) {
      clockOffset = daemonTime - (sentAt + receivedAt) / 2000;
      bestRtt = Math.min(rtt, bestRtt * 1.5 + 2);
      bestAt = now;
    }
  }
  let readingClock = false;
  async function readClock(times) {
    // A tiny answer read a few times: the quickest round trip wins.
    if (readingClock) return;
    readingClock = true;
    try {
      for (let i = 0; i < times; i++) {
        const sent = performance.now();
        const r = await fetch("api/clock", {headers: headers()});
        const received = performance.now();       // headers are in: the body is tiny
        const c = await r.json();
        if (r.ok) { syncClock(c.now, sent, received); clockReadings++; }
        await new Promise((done) => setTimeout(done, 40));
      }
    } catch (e) { /* the event stream reports a lost connection */ }
    readingClock = false;
  }

  // -- talking to the daemon ------------------------------------------------
  const headers = (extra) => {
    const h = Object.assign({}, extra);
    if (TOKEN) h["X-Switchboard-Token"] = TOKEN;
    return h;
  };
  let sending = Promise.resolve();
  function post(path, body) {
    // One at a time, in order: a release never overtakes its press.
    sending = sending.then(async () => {
      try {
        const r = await fetch(path, {
          method: "POST", body: JSON.stringify(body),
          headers: headers({"Content-Type": "application/json", "X-Switchboard-Request": "view"}),
        });
        if (!r.ok) {
          const err = await r.json().catch(() => ({error: r.statusText}));
          log(err.error || `${path}: ${r.status}`, "error");
        }
      } catch (e) {
        log(`cannot reach the board: ${e.message}`, "error");
      }
    });
    return sending;
  }

  let resyncTimer = null, fetching = false, eventsDuringFetch = 0;
  function resyncSoon() {
    if (fetching || resyncTimer) return;  // a fetch under way reads again when it is done
    resyncTimer = setTimeout(resync, 120);
  }
  async function resync() {
    resyncTimer = null; fetching = true; eventsDuringFetch = 0;
    try {
      const r = await fetch("api/status", {headers: headers()});
      const s = await r.json();
      if (r.ok) apply(s);
    } catch (e) { /* the event stream reports a lost connection */ }
    fetching = false;
    if (eventsDuringFetch) resyncSoon();   // what we got may be older than those events
  }

  function connect() {
    const es = new EventSource("api/events" + (TOKEN ? "?token=" + encodeURIComponent(TOKEN) : ""));
    es.addEventListener("snapshot", (m) => {
      const s = JSON.parse(m.data);
      const t = performance.now();
      syncClock(s.now, t, t);
      setOnline(true);
      apply(s);
      readClock(5);                  // timed readings refine the clock offset
    });
    es.onmessage = (m) => onEvent(JSON.parse(m.data));
    es.onerror = () => setOnline(false);   // EventSource retries by itself
  }
  function setOnline(on) {
    document.body.classList.toggle("offline", !on);
    $("banner").textContent = on ? "" : "Connection to the board lost: retrying…";
  }

  // -- events ---------------------------------------------------------------
  function onEvent(ev) {
    if (!snap) return;
    if (fetching) eventsDuringFetch++;     // the snapshot on its way may predate this
    switch (ev.type) {
      case "lamp":
        if (ev.cadence === undefined) break;   // a bare level (lamp test): read the snapshot
        snap.lamps[ev.lamp] = {cadence: ev.cadence, lit: false};
        setLamp(ev.lamp, ev.cadence);
        break;                                  // a fault lamp's reason is in the snapshot
      case "line": {
        const ln = snap.lines.find((l) => l.number === ev.line);
        if (ln) { Object.assign(ln, {state: ev.state, position: ev.position, rings: ev.rings}); drawLine(ln); }
        break;
      }
      case "key":
        setKeyDown(ev.key, ev.down, ev.note);
        if (ev.note) log(`key ${ev.key}: ${ev.note}`, "key");
        return;
      case "switch":
        snap.switches[ev.switch] = ev.on;
        drawSwitches();
        log(ev.switch === "split"
          ? (ev.on ? "split key on: each half served by its own position" : "split key off: position 1 serves every line")
          : (ev.on ? "secrecy on: lines the customer answered stay closed" : "secrecy off"), "command");
        break;
      case "lamp-test":                         // started or ended: read the levels
        resyncSoon();
        return;
      case "notice":
        log(ev.text, "notice");
        resyncSoon();                 // a scheduled call's card may have come or gone
        return;
      case "command":
        if (ev.command === "Dial" && lastDial && lastDial.position === ev.position &&
            lastDial.line === ev.line && $("log").firstElementChild === lastDial.row) {
          lastDial.digits += ev.digit;       // one entry for a number, not one per digit
          lastDial.row.lastElementChild.textContent = describe({...ev, digit: lastDial.digits});
        } else {
          const row = log(describe(ev), "command");
          lastDial = ev.command === "Dial" ? {position: ev.position, line: ev.line,
                                               digits: ev.digit, row} : null;
        }
        break;
    }
    resyncSoon();   // callers, digits, positions: the snapshot has the rest
  }

  function describe(c) {
    const p = c.position ? `position ${c.position}` : "";
    switch (c.command) {
      case "Answer": return `${p} answered line ${c.line}`;
      case "Seize": return `${p} took line ${c.line}`;
      case "Hold": return `${p} put line ${c.line} on hold`;
      case "Resume": return `${p} picked up line ${c.line} again`;
      case "Release": return `${p} released line ${c.line}` + (c.ends_call ? "" : " (customer stays on)");
      case "Join": return `${p} joined line ${c.line}`;
      case "HoldRecall": return `line ${c.line} recalls: on hold ${Math.round(c.held_s)} s`;
      case "Dial": return `${p} dialled ${c.digit}` + (c.line ? ` on line ${c.line}` : "");
      case "StampRequest": return `${p} stamped` + (c.line ? ` for line ${c.line}` : "");
      default: return c.command + " " + JSON.stringify(Object.fromEntries(
        Object.entries(c).filter(([k]) => k !== "type" && k !== "command")));
    }
  }

  function log(text, kind) {
    const box = $("log");
    const row = el("div", "entry " + (kind || ""));
    const t = new Date();
    row.append(el("time", null, t.toTimeString().slice(0, 8)), el("span", null, text));
    box.prepend(row);
    while (box.childElementCount > LOG_MAX) box.lastElementChild.remove();
    return row;
  }

  // -- drawing --------------------------------------------------------------
  function apply(s) {
    snap = s;
    if (builtFor !== s.board + ":" + s.lines.length) build(s);
    for (const [name, lamp] of Object.entries(s.lamps)) setLamp(name, lamp.cadence);
    for (const ln of s.lines) drawLine(ln);
    drawSwitches();
    drawPositions();
    const down = new Set(s.keys_down), stuck = new Set(s.stuck);
    for (const name of keyEls.keys()) {
      setKeyDown(name, down.has(name) || heldLocally.has(name));
      for (const e of keyEls.get(name)) e.classList.toggle("stuck", stuck.has(name));
    }
    // A lamp test walks the lamps one by one: show the daemon's own levels,
    // read often while it runs.
    document.body.classList.toggle("lamp-test", !!s.lamp_test);
    if (s.lamp_test) {
      for (const [name, lamp] of Object.entries(s.lamps)) {
        for (const e of lampEls.get(name) || []) e.dataset.lit = String(!!lamp.lit);
      }
      if (!resyncTimer) resyncTimer = setTimeout(resync, 100);
    }
    drawDue(s.due_calls || []);
    document.body.classList.toggle("key-test", !!s.key_test);
    drawAdapters(s);
    const faults = Object.entries(s.faults || {}).map(([k, v]) => `${k}: ${v}`).join("\n");
    $("lamp-fault").title = faults || "no faults";
  }

  // Wake-up and reminder calls waiting for an operator: one card each.
  function drawDue(cards) {
    const box = $("due");
    if (!box) return;
    box.replaceChildren();
    for (const c of cards) {
      const card = el("div", "card " + c.kind);
      card.dataset.occurrence = c.occurrence;
      card.append(el("div", "what", (c.kind === "wakeup" ? "Wake-up call" : "Reminder call") +
                     (c.line ? ` on line ${c.line}` : "") + (c.attempt > 1 ? `, try ${c.attempt}` : "")));
      card.append(el("div", "who", `${c.customer}: call ${c.number}`));
      card.append(el("div", "say", `Say: ${c.message}`));
      if (c.note) card.append(el("div", "note", c.note));
      box.append(card);
    }
    box.hidden = cards.length === 0;
  }

  function build(s) {
    builtFor = s.board + ":" + s.lines.length;
    keyEls.clear(); lampEls.clear(); lineEls.clear();
    document.title = s.title || "Switchboard";
    $("title").textContent = s.title || s.board;
    const compact = s.lines.length > COMPACT_LINES;
    document.body.classList.toggle("compact", compact);
    document.body.classList.toggle("simulated", !!s.sim);
    document.body.classList.toggle("real", !s.sim);
    addLamp("fault", $("lamp-fault"));
    addKey("secrecy", $("switch-secrecy"));
    addKey("split", $("switch-split"));

    // The lamp field: customer lines, then office lines, each a row of cells.
    const field = $("field");
    field.replaceChildren();
    for (const [kind, heading] of [["customer", "Customer lines"], ["office", "Office lines"]]) {
      const lines = s.lines.filter((l) => l.kind === kind);
      if (!lines.length) continue;
      const group = el("div", "group " + kind);
      group.style.setProperty("--n", lines.length);
      group.append(el("h2", null, heading));
      const grid = el("div", "grid");
      for (const ln of lines) grid.append(buildLine(ln, compact));
      group.append(grid);
      field.append(group);
    }

    // Each position's key strip and dial pad.
    const box = $("positions");
    box.replaceChildren();
    const keys = s.keys || [];
    for (const pos of s.positions) {
      const p = pos.position;
      const panel = el("div", "position");
      panel.dataset.position = p;
      const head = el("div", "pos-head");
      head.append(el("span", "pos-name", `Position ${p}`), el("span", "pos-line"),
                  el("span", "pos-digits"));
      panel.append(head);
      const body = el("div", "pos-body");
      const strip = el("div", "strip");
      for (const role of ["hold", "release", "stamp"]) {
        const k = keys.find((k) => k.role === role && k.position === p);
        if (!k) continue;
        const b = el("button", "key strip-key " + role, role);
        addKey(k.name, b);
        strip.append(b);
      }
      const pad = el("div", "pad");
      for (const d of ["1", "2", "3", "4", "5", "6", "7", "8", "9", "*", "0", "#"]) {
        const k = keys.find((k) => k.role === "dial" && k.position === p && k.digit === d);
        if (!k) continue;
        const b = el("button", "key dial", d);
        addKey(k.name, b);
        pad.append(b);
      }
      body.append(strip, pad);
      panel.append(body);
      // The customer's card: on a ringing line this position serves, then while it talks.
      const card = el("div", "pos-card");
      card.hidden = true;
      panel.append(card);
      box.append(panel);
    }

    // The simulator's ring control.
    $("sim").hidden = !s.sim;
    requestAnimationFrame(fit);
    const sel = $("sim-line");
    sel.replaceChildren(...s.lines.map((l) => {
      const o = el("option", null, `${l.number} ${l.label}`);
      o.value = l.number;
      return o;
    }));
  }

  function buildLine(ln, compact) {
    const cell = el("div", "line half-" + ln.half);
    cell.dataset.line = ln.number;
    const lamps = el("div", "lamps");
    const lamp = el("span", "lamp line-lamp");
    addLamp("line-" + ln.number, lamp);
    lamps.append(lamp);
    if (ln.kind === "customer") {
      const msg = el("span", "lamp msg-lamp");
      msg.title = "messages waiting";
      addLamp("msg-" + ln.number, msg);
      lamps.append(msg);
    }
    lamps.append(el("span", "badge"));
    const key = el("button", "key line-key");
    key.append(el("span", "number", ln.number));
    if (!compact) key.append(el("span", "label", ln.label));
    addKey("line-" + ln.number, key);
    cell.append(el("span", "half-tab"), lamps, key);
    if (!compact) cell.append(el("div", "state"));
    lineEls.set(ln.number, cell);
    return cell;
  }

  const STATE_TEXT = {
    idle: "idle", ringing: "ringing", operator: "in use", held: "on hold",
    customer: "customer on line", busy: "busied out",
  };
  function drawLine(ln) {
    const cell = lineEls.get(ln.number);
    if (!cell) return;
    cell.dataset.state = ln.state;
    const served = servedBy(ln);
    let text = STATE_TEXT[ln.state] || ln.state, more = "";
    let badge = "";
    if (ln.state === "ringing") {
      text += ` · ${ln.rings} ring${ln.rings === 1 ? "" : "s"}`;
      more = ln.caller ? `from ${ln.caller}` : "";
      badge = "×" + ln.rings;
    } else if (ln.state === "operator" && ln.position) {
      text += ` · P${ln.position}`;
      badge = "P" + ln.position;
    } else if (ln.state === "held") {
      text += ln.position ? ` · P${ln.position}` : "";
      badge = "H";
    }
    if (ln.messages) more += (more ? " · " : "") + `${ln.messages} message${ln.messages === 1 ? "" : "s"}`;
    const st = cell.querySelector(".state");
    if (st) st.replaceChildren(el("span", null, text), el("span", "more", more));
    if (more) text += "\n" + more;
    cell.querySelector(".badge").textContent = badge;
    cell.querySelector(".half-tab").textContent = `half ${ln.half} → P${served}`;
    cell.title = `${ln.number} ${ln.label} (${ln.kind})\n${text}\n` +
                 `half ${ln.half}, served by position ${served}`;
  }
  function servedBy(ln) {
    if (!snap || !snap.switches.split || snap.positions.length < 2) return 1;
    return ln.half;
  }

  function drawSwitches() {
    for (const name of ["secrecy", "split"]) {
      const on = !!snap.switches[name];
      const b = $("switch-" + name);
      b.setAttribute("aria-checked", String(on));
      b.classList.toggle("on", on);
    }
    document.body.classList.toggle("split", !!snap.switches.split);
    for (const ln of snap.lines) {
      const cell = lineEls.get(ln.number);
      if (cell) cell.querySelector(".half-tab").textContent = `half ${ln.half} → P${servedBy(ln)}`;
    }
    const halves = $("halves");
    halves.replaceChildren();
    const n = snap.positions.length;
    for (const h of n > 1 ? [1, 2] : [1]) {
      const tag = el("span", "half-legend half-" + h);
      tag.textContent = `half ${h} → P${snap.switches.split ? h : 1}`;
      halves.append(tag);
    }
    drawPositions();
  }

  function drawPositions() {
    for (const pos of snap.positions) {
      const panel = document.querySelector(`.position[data-position="${pos.position}"]`);
      if (!panel) continue;
      const staffed = pos.staffed !== undefined ? pos.staffed
        : (pos.position === 1 || !!snap.switches.split);
      panel.classList.toggle("unstaffed", !staffed);
      const ln = pos.line && snap.lines.find((l) => l.number === pos.line);
      panel.querySelector(".pos-line").textContent =
        !staffed ? "not in service (split key off)"
          : ln ? `on ${ln.number} ${ln.label}` : "free";
      panel.querySelector(".pos-digits").textContent = pos.digits || "";
      drawCard(panel.querySelector(".pos-card"), staffed ? cardFor(pos) : null);
    }
  }

  // The time clock's cards: the one a position picked up, else the first ringing
  // line's that this position serves (the card appears as the line rings).
  function cardFor(pos) {
    const tc = snap.timeclock || {};
    const picked = (tc.cards || {})[String(pos.position)];
    if (picked) return picked;
    const offered = tc.offered || {};
    const ringing = snap.lines.find((l) => l.state === "ringing" && offered[l.number] &&
                                      servedBy(l) === pos.position);
    return ringing ? offered[ringing.number] : null;
  }

  function drawCard(box, c) {
    if (!box) return;
    box.hidden = !c;
    const key = c ? JSON.stringify(c) : "";
    if (box.dataset.shown === key) return;
    box.dataset.shown = key;
    box.replaceChildren();
    if (!c) return;
    box.dataset.customer = c.customer || "";
    box.append(el("div", "card-name", `${c.name} · line ${c.line}`));
    box.append(el("div", "card-answer", `“${c.answer}”`));
    const rows = [["Instructions", c.instructions], ["Collect", (c.collect || []).join(", ")],
                  ["Say it", c.pronounce],
                  ["Emergency", (c.emergency || []).map((n) => `${n.label} ${n.number}`).join(", ")],
                  ["On call", (c.on_call || []).map((n) => `${n.label} ${n.number}`).join(", ")],
                  ["On notice", c.on_notice]];
    for (const [label, text] of rows) {
      if (!text) continue;
      const row = el("div", "card-row");
      row.append(el("span", "card-label", label), el("span", "card-text", text));
      box.append(row);
    }
    const waiting = c.waiting || [];
    const w = el("div", "card-waiting", waiting.length
      ? `${waiting.length} message${waiting.length > 1 ? "s" : ""} waiting` : "no messages waiting");
    box.append(w);
    for (const m of waiting) {
      box.append(el("div", "card-msg", `#${m.slip} ${m.text || "(recording)"}`));
    }
  }

  // Adapters (telephony, time clock, printer) report their status under their
  // own names in the snapshot: one chip each, red when it reports an error.
  const SNAPSHOT_KEYS = new Set(["board", "title", "now", "lines", "lamps", "positions",
    "switches", "keys_down", "stuck", "faults", "key_test", "lamp_test", "sim", "keys", "uptime_s"]);
  function drawAdapters(s) {
    const box = $("adapters");
    const chips = Object.entries(s)
      .filter(([k, v]) => !SNAPSHOT_KEYS.has(k) && v && typeof v === "object" && !Array.isArray(v))
      .map(([name, st]) => {
        const bad = !!st.error || st.ok === false;
        const chip = el("span", "adapter" + (bad ? " bad" : ""), name);
        chip.title = Object.entries(st).map(([k, v]) =>
          `${k}: ${typeof v === "object" ? JSON.stringify(v) : v}`).join("\n");
        return chip;
      });
    box.replaceChildren(...chips);
  }

  function addLamp(name, e) {
    e.dataset.lamp = name;
    if (!lampEls.has(name)) lampEls.set(name, []);
    lampEls.get(name).push(e);
  }
  function setLamp(name, cadence) {
    for (const e of lampEls.get(name) || []) e.dataset.cadence = cadence;
  }

  function addKey(name, e) {
    e.dataset.key = name;
    if (!keyEls.has(name)) keyEls.set(name, []);
    keyEls.get(name).push(e);
  }
  function setKeyDown(name, down) {
    for (const e of keyEls.get(name) || []) e.classList.toggle("down", down || heldLocally.has(name));
  }

  // -- operating the keys ---------------------------------------------------
  // A key is down while the pointer (mouse, finger) holds it; switches latch.
  function keyOf(target) {
    const e = target.closest("[data-key]");
    return e && keyEls.has(e.dataset.key) ? e : null;
  }
  // On a real board the keys are pressed by hand; the view shows them going down.
  let toldReal = -Infinity;
  function realBoard() {
    if (!snap || snap.sim) return false;
    if (performance.now() - toldReal > 3000) {
      log("this is the real board: press its keys by hand; the view shows them", "notice");
      toldReal = performance.now();
    }
    return true;
  }
  function press(name) {
    if (heldLocally.has(name) || realBoard()) return;
    heldLocally.add(name);
    setKeyDown(name, true);
    post("api/press", {key: name});
  }
  function release(name) {
    if (!heldLocally.delete(name)) return;
    setKeyDown(name, false);
    post("api/release", {key: name});
  }
  function isSwitch(e) { return e.classList.contains("switch"); }

  document.addEventListener("pointerdown", (ev) => {
    const e = keyOf(ev.target);
    if (!e || isSwitch(e) || ev.button !== 0) return;
    ev.preventDefault();
    e.setPointerCapture(ev.pointerId);
    press(e.dataset.key);
  });
  for (const type of ["pointerup", "pointercancel", "lostpointercapture"]) {
    document.addEventListener(type, (ev) => {
      const e = keyOf(ev.target);
      if (e && !isSwitch(e)) release(e.dataset.key);
    });
  }
  document.addEventListener("keydown", (ev) => {
    const e = keyOf(ev.target);
    if (!e || isSwitch(e) || ev.repeat || (ev.key !== " " && ev.key !== "Enter")) return;
    ev.preventDefault();
    press(e.dataset.key);
  });
  document.addEventListener("keyup", (ev) => {
    const e = keyOf(ev.target);
    if (!e || isSwitch(e) || (ev.key !== " " && ev.key !== "Enter")) return;
    ev.preventDefault();
    release(e.dataset.key);
  });
  document.addEventListener("click", (ev) => {
    const e = keyOf(ev.target);
    if (!e || !isSwitch(e) || !snap) return;
    if (realBoard()) return;
    const name = e.dataset.key;
    const on = !!snap.switches[name];
    post(on ? "api/release" : "api/press", {key: name});   // press = on, again = off
  });
  document.addEventListener("contextmenu", (ev) => { if (keyOf(ev.target)) ev.preventDefault(); });
  window.addEventListener("blur", () => { for (const k of [...heldLocally]) release(k); });

  $("sim-ring").addEventListener("click", () => {
    const caller = $("sim-caller").value.trim();
    const body = {line: $("sim-line").value};
    if (caller) body.caller = caller;
    post("api/ring", body);
  });
  $("sim-hangup").addEventListener("click", () => post("api/hangup", {line: $("sim-line").value}));
  $("fullscreen").addEventListener("click", () => {
    if (document.fullscreenElement) document.exitFullscreen();
    else document.documentElement.requestFullscreen().catch(() => {});
  });

  // Fit the whole board on the screen (the Pi's own panel may be 800x480):
  // shrink it as a whole, down to a size a finger can still hit, then scroll.
  const MIN_ZOOM = 0.6;
  function fit() {
    // The layout reflows at each zoom (more columns fit), so try from full
    // size down and keep the first that fits.
    const board = $("board");
    let zoom = 1;
    for (; zoom > MIN_ZOOM; zoom -= 0.05) {
      board.style.zoom = zoom;
      const bottom = board.lastElementChild.getBoundingClientRect().bottom + scrollY;
      if (bottom + 14 * zoom <= innerHeight) break;
    }
    board.style.zoom = Math.max(zoom, MIN_ZOOM);
  }
  let fitTimer = null;
  window.addEventListener("resize", () => { clearTimeout(fitTimer); fitTimer = setTimeout(fit, 100); });

  // For tests and the curious: the page's idea of the daemon's clock.
  window.switchboardView = {daemonNow, snapshot: () => snap, timed: () => clockReadings >= 5};

  interrupter();
  connect();
  // A slow re-read as a safety net: anything no event announced (a lamp test
  // started from the diagnostic tool, a fault) shows within a few seconds.
  setInterval(() => { if (!document.body.classList.contains("offline")) resyncSoon(); }, 4000);
  setInterval(() => { if (!document.body.classList.contains("offline")) readClock(3); }, 30000);
})();
