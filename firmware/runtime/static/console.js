// The operator's console: one message pad per position (with the customer's card
// and history), the message rack with check-in, and the dead box.
//
// The daemon keeps everything: each keystroke's draft is saved with the position
// and the call it is for (on disk there) so a reload or a restart finds it again,
// and picking up another line leaves it unfinished, never mixed with the next
// customer's; stamping is the time clock's own stamp (the physical stamp key, the
// pad's button or Ctrl+Enter).
"use strict";
(function () {
  const TOKEN = new URLSearchParams(location.search).get("token");
  const $ = (id) => document.getElementById(id);
  const SAVE_MS = 250;
  // This screen's own position (?position=2 for a second screen at position 2): read-backs
  // from the rack are stamped there unless a position has the customer's card up.
  const SCREEN_POSITION = Number(new URLSearchParams(location.search).get("position")) || 1;
  let snap = null;
  let view = "positions";
  const pads = new Map();        // position -> its pad (see drawPositions)

  function el(tag, cls, text) {
    const e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined && text !== null) e.textContent = text;
    return e;
  }
  const q = (path, params) => {
    const u = new URLSearchParams(params || {});
    if (TOKEN) u.set("token", TOKEN);
    const s = u.toString();
    return "api/" + path + (s ? "?" + s : "");
  };
  const headers = (extra) => Object.assign(TOKEN ? {"X-Switchboard-Token": TOKEN} : {}, extra || {});

  async function get(path, params) {
    const r = await fetch(q(path, params), {headers: headers()});
    const body = await r.json().catch(() => ({error: r.statusText}));
    if (!r.ok) throw new Error(body.error || `${path}: ${r.status}`);
    return body;
  }
  async function post(path, body, keepalive) {
    const r = await fetch(q(path), {method: "POST", body: JSON.stringify(body), keepalive: !!keepalive,
      headers: headers({"Content-Type": "application/json", "X-Switchboard-Request": "console"})});
    const out = await r.json().catch(() => ({error: r.statusText}));
    if (!r.ok) throw new Error(out.error || `${path}: ${r.status}`);
    return out;
  }

  function age(s) {
    if (s < 60) return `${s} s`;
    if (s < 3600) return `${Math.floor(s / 60)} min`;
    if (s < 86400) return `${Math.floor(s / 3600)} h ${Math.floor(s % 3600 / 60)}`;
    return `${Math.floor(s / 86400)} d`;
  }
  function when(iso) { return iso ? iso.replace("T", " ").slice(0, 16) : ""; }
  function sentChip(d) {
    if (!d || !d.status) return el("span");
    const label = d.status === "held" ? (d.method === "hold" ? "held" : `held (${d.method})`)
      : `${d.method} ${d.status}` + (d.status !== "sent" && d.tries ? ` ×${d.tries}` : "");
    const c = el("span", "st " + d.status, label);
    c.title = [d.to, d.last_error].filter(Boolean).join(": ");
    return c;
  }

  // -- the board's state --------------------------------------------------
  let fetching = false, again = false;
  async function resync() {
    if (fetching) { again = true; return; }
    fetching = true;
    try {
      snap = await get("status");
      $("title").textContent = `${snap.title || snap.board}: console`;
      drawPositions();
      drawDelivery();
      if (view !== "rack") refreshRackCount();
    } catch (e) { /* the event stream says when the board is gone */ }
    fetching = false;
    if (again) { again = false; resync(); }
  }
  let soon = null, rackSoon = null, rackDrawing = null, rackAgain = false;
  function resyncSoon() {
    if (!soon) soon = setTimeout(() => { soon = null; resync(); }, 20);
    // The rack is read on its own, beside the status: a stamp shows there at once.
    if (view === "rack" && !rackSoon) rackSoon = setTimeout(redrawRack, 10);
  }
  async function redrawRack() {
    rackSoon = null;
    if (rackDrawing) { rackAgain = true; return; }
    rackDrawing = drawRack();
    await rackDrawing;
    rackDrawing = null;
    if (rackAgain) { rackAgain = false; redrawRack(); }
  }

  function connect() {
    const es = new EventSource(q("events"));
    es.addEventListener("snapshot", () => { setOnline(true); resync(); });
    es.onmessage = () => resyncSoon();
    es.onerror = () => setOnline(false);
  }
  function setOnline(on) {
    document.body.classList.toggle("offline", !on);
    $("banner").textContent = on ? "" : "Connection to the board lost: retrying…";
  }

  function drawDelivery() {
    const d = (snap.timeclock || {}).delivery;
    const chip = $("delivery");
    chip.hidden = !d;
    if (!d) return;
    chip.textContent = `outbox: ${d.queued} queued, ${d.sent} sent, ${d.failed} failed`;
    chip.className = "chip" + (d.failed || d.last_error ? " bad" : "");
    chip.title = d.last_error || "";
  }

  // -- the message pads -------------------------------------------------------
  // A pad shows one draft, named by the call it is for ("201/c-7"): the call the
  // position picked up last (empty until typed), or an unfinished one reopened. Each
  // save names its draft, so keystrokes still on their way when the operator picks up
  // another line are kept for the customer they were typed for.
  function staffed(pos) {
    return pos.staffed !== undefined ? pos.staffed : (pos.position === 1 || !!snap.switches.split);
  }
  function cardFor(pos) {
    const tc = snap.timeclock || {};
    return (tc.cards || {})[String(pos.position)] || null;
  }
  function padFor(pos) {
    const tc = snap.timeclock || {};
    const p = String(pos.position);
    return {on: (tc.on_pad || {})[p] || null, draft: (tc.pads || {})[p] || null,
            others: (tc.unfinished || {})[p] || []};
  }
  function fieldsFor(card, draft) {
    // The card's fields, then any the draft holds that the card does not ask for
    // (never hidden, so never dropped by the next save), the message last.
    const names = [];
    for (const f of [...(card ? card.collect : []), ...Object.keys((draft && draft.fields) || {})]) {
      if (f !== "message" && !names.includes(f)) names.push(f);
    }
    names.push("message");
    return names;
  }
  function isNumberField(name) { return /number|phone/i.test(name); }

  function drawPositions() {
    const box = $("view-positions");
    const want = snap.positions.filter(staffed).map((p) => p.position);
    for (const [p, pad] of pads) {
      if (!want.includes(p)) { pad.box.remove(); pads.delete(p); }
    }
    for (const pos of snap.positions) {
      if (!want.includes(pos.position)) continue;
      let pad = pads.get(pos.position);
      if (!pad) {
        pad = {box: el("article", "position p" + pos.position), key: null, id: null, timer: null,
               dirty: false, typed: false, pending: new Map(), chain: Promise.resolve(),
               list: null, listKey: null, stamped: ""};
        pad.box.dataset.position = pos.position;
        pads.set(pos.position, pad);
        box.append(pad.box);
      }
      drawPad(pos, pad);
    }
  }

  function drawPad(pos, pad) {
    const card = cardFor(pos);
    const {on, draft, others} = padFor(pos);
    const ln = pos.line && snap.lines.find((l) => l.number === pos.line);
    const key = JSON.stringify([card && card.customer, card && card.line, card && card.warning,
                                card && card.check_in, pos.line, card && card.waiting.length,
                                card && card.instructions, on && on.id]);
    if (pad.key !== key) {
      if (pad.timer || pad.dirty) save(pos.position, pad);   // typed so far: to its own draft first
      pad.key = key;
      build(pos, pad, card, on, draft, ln);
    }
    drawUnfinished(pos.position, pad, others);
    if (!pad.form) return;
    // Fill from the daemon's draft unless the operator is typing into this pad.
    if (!pad.dirty && !pad.pending.get(pad.id)) {
      const fields = (draft && draft.fields) || {};
      for (const input of pad.form.querySelectorAll("[data-field]")) {
        let v = fields[input.dataset.field];
        if (v === undefined && !draft && on.line === pos.line && isNumberField(input.dataset.field)
            && ln && ln.caller) {
          v = ln.caller;                               // caller ID, editable
        }
        if (v === undefined) v = "";
        // Until the operator types on this pad it takes everything (a reload, a late save);
        // then the field being typed in is left alone.
        if (input.value !== v && (!pad.typed || document.activeElement !== input)) input.value = v;
      }
      const u = pad.form.querySelector("[name=urgent]");
      if (!pad.typed || document.activeElement !== u) u.checked = !!(draft && draft.urgent);
      pad.form.querySelector(".saved").textContent = draft ? `kept ${draft.updated.slice(11, 19)}`
        : pad.stamped;
    }
  }

  function build(pos, pad, card, on, draft, ln) {
    const p = pos.position;
    const had = pad.form && pad.form.contains(document.activeElement);
    pad.form = null;             // first: the field losing focus as it goes may fire "change"
    pad.box.replaceChildren();
    pad.id = on ? on.id : null;
    pad.typed = false;
    pad.list = el("div", "unfinished");
    pad.listKey = null;
    pad.box.append(el("h2", null, `Position ${p}` + (ln ? ` · on ${ln.number} ${ln.label}` : "")));
    if (card) {
      pad.box.append(el("div", "card-name", `${card.name} · line ${card.line}`));
      pad.box.append(el("div", "card-answer", `“${card.answer}”`));
      for (const [label, text] of [["Instructions", card.instructions], ["Say it", card.pronounce],
          ["Emergency", (card.emergency || []).map((n) => `${n.label} ${n.number}`).join(", ")],
          ["On call", (card.on_call || []).map((n) => `${n.label} ${n.number}`).join(", ")],
          ["Delivery", card.delivery && card.delivery.method !== "hold"
            ? `${card.delivery.method} to ${card.delivery.to}` : ""],
          ["Waiting", card.waiting.length ? `${card.waiting.length} message(s)` : ""]]) {
        if (!text) continue;
        const row = el("div", "card-row");
        row.append(el("b", null, label), document.createTextNode(text));
        pad.box.append(row);
      }
      if (card.on_notice) pad.box.append(el("div", "card-warn", `On notice since ${card.on_notice}`));
      if (card.warning) pad.box.append(el("div", "card-warn nuisance", card.warning));
      if (card.check_in) {                   // the customer calling in for their messages
        const b = el("button", "checkin-card", `Check in: read ${card.name}'s messages`);
        b.type = "button";
        b.addEventListener("click", () => { show("rack"); checkIn(card.customer, p); });
        pad.box.append(b);
      }
    }
    if (!on || (!card && !draft)) {
      if (!card) pad.box.append(el("div", "idle", "No call. The card and message pad appear when you pick a line up."));
      pad.box.append(pad.list);
      return;
    }
    const here = on.line === pos.line;
    if (!here) {                             // not the call the position is on: say whose it is
      const who = `${(draft && (draft.name || draft.customer)) || "no customer"} · line ${on.line || "?"}`;
      pad.box.append(el("div", "card-warn", pos.line
        ? `Message for ${who}, an earlier call (you are on line ${pos.line}): stamp it or clear it.`
        : `Message for ${who}: the line was released; stamp it or clear it.`));
      if (pos.line) {
        const back = el("button", "back", `Back to line ${pos.line}`);
        back.type = "button";
        back.addEventListener("click", () => openDraft(p, pad, null));
        pad.box.append(back);
      }
    }
    const form = el("form", "pad");
    form.autocomplete = "off";
    form.dataset.position = p;
    form.dataset.draft = on.id;
    for (const name of fieldsFor(here ? card : null, draft)) {
      const id = `p${p}-${name.replace(/\W+/g, "-")}`;
      const label = el("label", null, name);
      label.htmlFor = id;
      const input = name === "message" ? el("textarea") : el("input");
      input.id = id;
      input.dataset.field = name;
      if (name === "message") input.rows = 2;
      if (isNumberField(name)) input.inputMode = "tel";
      form.append(label, input);
    }
    const row = el("div", "row");
    const urgent = el("label", "urgent");
    const box = el("input");
    box.type = "checkbox"; box.name = "urgent"; box.id = `p${p}-urgent`;
    urgent.append(box, document.createTextNode(" urgent"));
    const stamp = el("button", "stamp", "Stamp");
    stamp.type = "submit";
    stamp.title = "Stamp the message (Ctrl+Enter), or press the board's stamp key";
    const clear = el("button", null, "Clear");
    clear.type = "button";
    row.append(urgent, stamp, clear, el("span", "saved"));
    form.append(row, el("div", "error"));
    const edited = () => { if (pad.form === form) changed(p, pad); };
    form.addEventListener("input", edited);
    form.addEventListener("change", edited);
    form.addEventListener("submit", (e) => { e.preventDefault(); stampPad(p, pad); });
    form.addEventListener("keydown", (e) => {
      if (e.key === "Enter" && (e.ctrlKey || e.metaKey)) { e.preventDefault(); stampPad(p, pad); }
    });
    clear.addEventListener("click", async () => {
      if (!confirm("Throw this message away?")) return;
      const id = pad.id;
      clearTimeout(pad.timer);
      pad.timer = null;
      pad.dirty = false;
      await pad.chain;
      await post("draft-clear", {position: p, id}).catch((e) => showError(pad, e));
      pad.key = null; resync();
    });
    pad.box.append(form, pad.list);
    pad.form = form;
    const hist = el("div", "history");
    pad.box.append(hist);
    if (card) drawHistory(hist, card.customer, ln && ln.caller);
    // Keyboard first: a new card puts the cursor in the first field.
    const focused = document.activeElement;
    if (had || !focused || focused === document.body) form.querySelector("[data-field]").focus();
  }

  // The position's drafts left on other calls: each opens on the pad, to finish and stamp
  // under its own customer.
  function drawUnfinished(p, pad, others) {
    const key = JSON.stringify(others.map((d) => [d.id, d.name, d.text]));
    if (!pad.list || pad.listKey === key) return;
    pad.listKey = key;
    pad.list.replaceChildren();
    for (const d of others) {
      const row = el("div", "unfinished-row");
      row.dataset.draft = d.id;
      const b = el("button", null, "Open");
      b.type = "button";
      b.addEventListener("click", () => openDraft(p, pad, d.id));
      row.append(b, el("span", null, `Unfinished: line ${d.line || "?"}, ` +
        `${d.name || d.customer || "no customer"}: ${d.text || "(nothing typed)"}`));
      pad.list.append(row);
    }
  }

  async function openDraft(p, pad, id) {
    if (pad.timer || pad.dirty) save(p, pad);
    await pad.chain;
    try { await post("draft-open", id ? {position: p, id} : {position: p}); } catch (e) { showError(pad, e); }
    resync();
  }

  function padFields(pad) {
    const fields = {};
    for (const input of pad.form.querySelectorAll("[data-field]")) fields[input.dataset.field] = input.value;
    return {fields, urgent: pad.form.querySelector("[name=urgent]").checked};
  }

  function changed(p, pad) {
    pad.dirty = true;
    pad.typed = true;
    pad.stamped = "";
    clearTimeout(pad.timer);
    pad.timer = setTimeout(() => save(p, pad), SAVE_MS);
  }

  // Keep what the pad holds, for the draft it shows. Saves go one after another; on the
  // way out of the page (keepalive) at once, as the page will not wait.
  function save(p, pad, keepalive) {
    clearTimeout(pad.timer);
    pad.timer = null;
    if (!pad.form) return Promise.resolve();
    pad.dirty = false;
    const id = pad.id, form = pad.form;
    const body = {position: p, id, ...padFields(pad)};
    pad.pending.set(id, (pad.pending.get(id) || 0) + 1);
    const done = keepalive ? post("draft", body, true) : pad.chain.then(() => post("draft", body));
    pad.chain = done.catch(() => {});
    return done.then((r) => {
      if (pad.form !== form) return;
      showError(pad, null);
      if (!pad.dirty) form.querySelector(".saved").textContent = `kept ${r.draft.updated.slice(11, 19)}`;
    }, (e) => {
      if (pad.form !== form) return;
      pad.dirty = true;                 // not kept: keep it on screen and say so
      showError(pad, e);
    }).finally(() => {
      const n = pad.pending.get(id) - 1;
      if (n) pad.pending.set(id, n); else pad.pending.delete(id);
    });
  }

  // A reload, or the screen going off, right after typing: what is not kept yet goes now.
  function flushPads() {
    for (const [p, pad] of pads) if (pad.timer || pad.dirty) save(p, pad, true);
  }
  window.addEventListener("pagehide", flushPads);
  document.addEventListener("visibilitychange", () => {
    if (document.visibilityState === "hidden") flushPads();
  });

  async function stampPad(p, pad) {
    const form = pad.form, id = pad.id;
    if (pad.timer || pad.dirty) save(p, pad);
    await pad.chain;
    if (pad.form === form && pad.dirty) return;      // not kept: the pad says why
    try {
      const r = await post("stamp", {position: p, id});
      showError(pad, null);
      pad.stamped = `stamped slip ${r.stamp.slip}`;
      if (pad.form) pad.form.querySelector(".saved").textContent = pad.stamped;
      pad.key = null;
    } catch (e) { showError(pad, e); }
    resync();
  }

  function showError(pad, e) {
    const box = pad.form && pad.form.querySelector(".error");
    if (box) box.textContent = e ? e.message : "";
  }

  // The card's history, read each time a card comes up (a slip stamped since shows).
  async function drawHistory(box, customer, caller) {
    let h;
    try {
      h = await get("history", Object.fromEntries(Object.entries({customer, caller}).filter(([, v]) => v)));
    } catch (e) { box.textContent = e.message; return; }
    box.replaceChildren();
    const lines = [];
    const theirs = h.caller_messages || [];
    if (caller) {
      lines.push([null, `This caller: ${h.caller_calls.length} recent call(s)` +
        (h.caller_calls[0] ? `, last ${when(h.caller_calls[0].offered)} on ${h.caller_calls[0].line} (${h.caller_calls[0].outcome})` : "")]);
      for (const m of theirs.slice(0, 3)) {
        lines.push(["caller-msg", `Their slip ${m.slip} ${when(m.time)}: ${m.text || "(recording)"}`]);
      }
    }
    const shown = new Set(theirs.slice(0, 3).map((m) => m.slip));
    for (const c of h.customer_calls.slice(0, 3)) lines.push([null, `Call ${when(c.offered)} from ${c.caller || "?"}: ${c.outcome}`]);
    for (const m of h.messages.filter((m) => !shown.has(m.slip)).slice(0, 3)) {
      lines.push([null, `Slip ${m.slip} ${when(m.time)}: ${m.text || "(recording)"}`]);
    }
    if (!lines.length) lines.push([null, "No earlier calls or messages."]);
    for (const [cls, t] of lines) box.append(el("div", cls, t));
  }

  // -- the rack ---------------------------------------------------------------
  let checkingIn = null;         // {customer, position}: whose messages, read back where
  async function refreshRackCount() {
    const w = (snap.timeclock || {}).waiting || {};
    $("rack-count").textContent = Object.values(w).reduce((a, b) => a + b, 0);
  }

  async function drawRack() {
    let r;
    try { r = await get("rack"); } catch (e) { $("rack").textContent = e.message; return; }
    $("rack-count").textContent = r.waiting;
    const box = $("rack");
    box.replaceChildren();
    if (!r.rack.length) box.append(el("p", "idle", "The rack is empty."));
    for (const b of r.rack) {
      const d = el("div", "box pigeonhole");
      d.dataset.customer = b.customer || "";
      const h = el("h3");
      h.append(el("span", "who", `${b.name || b.customer} · line ${b.line}`),
               el("span", "count", String(b.messages.length)));
      const ci = el("button", "checkin-btn", "Check in");
      ci.addEventListener("click", () => checkIn(b.customer, rackPosition(b.customer)));
      h.append(ci);
      d.append(h);
      for (const m of b.messages) d.append(slipRow(m, `${age(m.age_s)}`));
      box.append(d);
    }
    if (checkingIn) await drawCheckIn();
  }

  function slipRow(m, second) {
    const row = el("div", "slip" + (m.urgent ? " urgent" : ""));
    row.dataset.slip = m.slip;
    const text = el("span", "text", m.text || "(recording)");
    if (m.callout) {
      const c = el("span", "st callout " + m.callout.state, `call-out ${m.callout.state}`);
      const tried = (m.callout.tried || []).length > 1 ? `called ${m.callout.tried.join(", ")}` : "";
      c.title = [m.callout.number, m.callout.note, tried].filter(Boolean).join(": ");
      text.append(" ", c);
    }
    row.append(el("span", "no", `#${m.slip}`), el("span", "age", second), text, sentChip(m.sent));
    return row;
  }

  // The position talking to the customer (their card is on its pad), else this screen's.
  function rackPosition(customer) {
    const cards = ((snap && snap.timeclock) || {}).cards || {};
    const p = Object.keys(cards).find((k) => cards[k] && cards[k].customer === customer);
    return p ? Number(p) : SCREEN_POSITION;
  }

  async function checkIn(customer, position) {
    checkingIn = {customer, position};
    await drawCheckIn();
  }

  async function drawCheckIn() {
    const box = $("checkin");
    let r;
    const at = checkingIn.position;
    try { r = await post("check-in", {customer: checkingIn.customer}); } catch (e) {
      box.hidden = false; box.textContent = e.message; return;
    }
    box.hidden = false;
    box.className = "box checkin";
    box.replaceChildren();
    const h = el("h3");
    h.append(el("span", "who", `Check-in: ${r.name} · ${r.waiting.length} waiting · position ${at}`));
    const done = el("button", null, "Done");
    done.addEventListener("click", () => { checkingIn = null; box.hidden = true; });
    h.append(done);
    box.append(h);
    if (!r.waiting.length) box.append(el("p", "idle", "All read back: the rack is empty and the lamp is dark."));
    for (const m of r.waiting) {
      const row = slipRow(m, when(m.time).slice(11));
      const b = el("button", "readback", "Read back");
      b.addEventListener("click", async () => {
        b.disabled = true;
        try { await post("read-back", {slip: m.slip, position: at}); } catch (e) { alert(e.message); }
        await drawRack();
      });
      row.append(b);
      box.append(row);
    }
    const first = box.querySelector("button.readback");
    if (first) first.focus();
  }

  // -- the dead box -------------------------------------------------------------
  let searchSeq = 0, typingTimer = null;
  async function search(ev) {
    if (ev) ev.preventDefault();
    const seq = ++searchSeq;
    const params = {};
    for (const [k, id] of [["customer", "q-customer"], ["since", "q-since"], ["until", "q-until"],
                           ["search", "q-search"], ["slip", "q-slip"]]) {
      if ($(id).value.trim()) params[k] = $(id).value.trim();
    }
    const box = $("results");
    $("found").textContent = "Searching…";
    let r;
    try { r = await get("deadbox", params); } catch (e) {
      if (seq === searchSeq) $("found").textContent = e.message;
      return;
    }
    if (seq !== searchSeq) return;     // typed on since: a newer search is on its way
    $("found").textContent = `${r.found}${r.more ? " or more" : ""} slip(s)` +
      (r.found > r.shown ? `, newest ${r.shown} shown` : "");
    box.replaceChildren();
    for (const m of r.slips) {
      const d = el("div", "box dead");
      d.dataset.slip = m.slip;
      const row = slipRow(m, when(m.time).slice(5));
      const s = el("div", "stamps");
      const parts = [`${m.name || m.customer || "?"} · line ${m.line} · stamped ${when(m.time)} at position ${m.position}`];
      parts.push(m.read_back ? `read back slip ${m.read_back.slip} ${when(m.read_back.time)}` : "still in the rack");
      const c = m.call_record;
      if (c) parts.push(`call ${c.id}: from ${c.caller || "?"}, ${c.rings} ring(s), ${c.outcome}`);
      s.textContent = parts.join(" · ");
      row.append(s);
      if (c && c.recording) {
        const audio = el("audio", "recording");
        audio.controls = true;
        audio.preload = "none";
        audio.src = q("recording", {call: c.id});
        row.append(audio);
      }
      d.append(row);
      box.append(d);
    }
  }

  async function fillCustomers() {
    try {
      const r = await get("customers");    // every customer, slips or not
      const sel = $("q-customer");
      const have = new Set([...sel.options].map((o) => o.value));
      for (const c of r.customers) {
        if (have.has(c.id)) continue;
        const o = el("option", null, `${c.name} (line ${c.line})`);
        o.value = c.id;
        sel.append(o);
      }
    } catch (e) { /* the search still works by text */ }
  }

  // -- tabs and keys --------------------------------------------------------------
  function show(name) {
    view = name;
    for (const b of document.querySelectorAll(".tabs button")) {
      b.setAttribute("aria-selected", String(b.dataset.view === name));
    }
    for (const v of ["positions", "rack", "deadbox"]) $("view-" + v).hidden = v !== name;
    if (name === "rack") drawRack();
    if (name === "deadbox") { fillCustomers(); $("q-search").focus(); }
  }
  for (const b of document.querySelectorAll(".tabs button")) b.addEventListener("click", () => show(b.dataset.view));
  document.addEventListener("keydown", (e) => {
    const k = {F1: "positions", F2: "rack", F3: "deadbox"}[e.key];
    if (k) { e.preventDefault(); show(k); }
  });
  $("search").addEventListener("submit", search);
  // Search as you type (the dead-box index answers in milliseconds): a pause of 150 ms
  // in the typing searches; words of one or two letters wait for Enter.
  for (const id of ["q-search", "q-slip"]) {
    $(id).addEventListener("input", () => {
      clearTimeout(typingTimer);
      const t = $("q-search").value.trim();
      if (t.length && t.length < 3 && !$("q-slip").value.trim()) return;
      typingTimer = setTimeout(search, 150);
    });
  }
  if (TOKEN) $("board-link").href = "./?token=" + encodeURIComponent(TOKEN);
  setInterval(() => { if (view === "rack") drawRack(); }, 15000);   // ages move on
  connect();
})();
