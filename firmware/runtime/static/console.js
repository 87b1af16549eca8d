// The operator's console: one message pad per position (with the customer's card
// and history), the message rack with check-in, and the dead box.
//
// The daemon keeps everything: each keystroke's draft is saved to the position
// (on disk there) so a reload or a restart finds it again; stamping is the
// time clock's own stamp (the physical stamp key or the pad's button).
"use strict";
(function () {
  const TOKEN = new URLSearchParams(location.search).get("token");
  const $ = (id) => document.getElementById(id);
  const SAVE_MS = 250;
  let snap = null;
  let view = "positions";
  const pads = new Map();        // position -> {box, form, key, timer, saving, dirty}
  const histories = new Map();   // "customer|caller" -> history (fetched once per card)

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
  async function post(path, body) {
    const r = await fetch(q(path), {method: "POST", body: JSON.stringify(body),
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
  function staffed(pos) {
    return pos.staffed !== undefined ? pos.staffed : (pos.position === 1 || !!snap.switches.split);
  }
  function cardFor(pos) {
    const tc = snap.timeclock || {};
    return (tc.cards || {})[String(pos.position)] || null;
  }
  function fieldsFor(card, draft) {
    const names = [];
    for (const f of (card ? card.collect : Object.keys((draft && draft.fields) || {}))) {
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
        pad = {box: el("article", "position p" + pos.position), key: null, timer: null,
               saving: null, dirty: false};
        pad.box.dataset.position = pos.position;
        pads.set(pos.position, pad);
        box.append(pad.box);
      }
      drawPad(pos, pad);
    }
  }

  function drawPad(pos, pad) {
    const tc = snap.timeclock || {};
    const card = cardFor(pos);
    const draft = (tc.pads || {})[String(pos.position)] || null;
    const ln = pos.line && snap.lines.find((l) => l.number === pos.line);
    const line = (draft && draft.line) || (card && card.line) || null;
    const key = JSON.stringify([card && card.customer, card && card.line, !!draft, card && card.warning,
                                card && card.check_in, pos.line,
                                draft && draft.line, card && card.waiting.length, card && card.instructions]);
    if (pad.key !== key) {
      pad.key = key;
      build(pos, pad, card, draft, line, ln);
    }
    if (!pad.form) return;
    // Fill from the daemon's draft unless the operator is typing into this pad.
    if (!pad.dirty && !pad.saving) {
      const fields = (draft && draft.fields) || {};
      for (const input of pad.form.querySelectorAll("[data-field]")) {
        let v = fields[input.dataset.field];
        if (v === undefined && !draft && isNumberField(input.dataset.field) && ln && ln.caller) {
          v = ln.caller;                               // caller ID, editable
        }
        if (v === undefined) v = "";
        // A pad just built takes everything; later, the field being typed in is left alone.
        if (input.value !== v && (pad.fresh || document.activeElement !== input)) input.value = v;
      }
      const u = pad.form.querySelector("[name=urgent]");
      if (pad.fresh || document.activeElement !== u) u.checked = !!(draft && draft.urgent);
      pad.fresh = false;
      pad.form.querySelector(".saved").textContent = draft ? `kept ${draft.updated.slice(11, 19)}` : "";
    }
  }

  function build(pos, pad, card, draft, line, ln) {
    const p = pos.position;
    const had = pad.form && pad.form.contains(document.activeElement);
    pad.box.replaceChildren();
    pad.form = null;
    pad.box.append(el("h2", null, `Position ${p}` + (ln ? ` · on ${ln.number} ${ln.label}` : "")));
    if (!card && !draft) {
      pad.box.append(el("div", "idle", "No call. The card and message pad appear when you pick a line up."));
      return;
    }
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
        b.addEventListener("click", () => { show("rack"); checkIn(card.customer); });
        pad.box.append(b);
      }
    } else {
      pad.box.append(el("div", "card-warn",
        `Draft for line ${draft.line || "?"}: the line was released; stamp it or clear it.`));
    }
    const form = el("form", "pad");
    form.autocomplete = "off";
    form.dataset.position = p;
    const names = fieldsFor(card, draft);
    for (const name of names) {
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
    form.addEventListener("input", () => changed(p, pad));
    form.addEventListener("change", () => changed(p, pad));
    form.addEventListener("submit", (e) => { e.preventDefault(); stampPad(p, pad); });
    form.addEventListener("keydown", (e) => {
      if (e.key === "Enter" && (e.ctrlKey || e.metaKey)) { e.preventDefault(); stampPad(p, pad); }
    });
    clear.addEventListener("click", async () => {
      if (!confirm("Throw this message away?")) return;
      await post("draft-clear", {position: p}).catch((e) => showError(pad, e));
      pad.dirty = false; pad.key = null; resync();
    });
    pad.box.append(form);
    pad.form = form;
    pad.fresh = true;
    const hist = el("div", "history");
    pad.box.append(hist);
    if (card) drawHistory(hist, card.customer, ln && ln.caller);
    // Keyboard first: a new card puts the cursor in the first field.
    const focused = document.activeElement;
    if (had || !focused || focused === document.body) form.querySelector("[data-field]").focus();
  }

  function padFields(pad) {
    const fields = {};
    for (const input of pad.form.querySelectorAll("[data-field]")) fields[input.dataset.field] = input.value;
    return {fields, urgent: pad.form.querySelector("[name=urgent]").checked};
  }

  function changed(p, pad) {
    pad.dirty = true;
    clearTimeout(pad.timer);
    pad.timer = setTimeout(() => save(p, pad), SAVE_MS);
  }

  async function save(p, pad) {
    clearTimeout(pad.timer);
    pad.timer = null;
    if (!pad.form) return;
    pad.dirty = false;
    const body = {position: p, ...padFields(pad)};
    const done = (pad.saving || Promise.resolve()).then(() => post("draft", body));
    pad.saving = done;
    try {
      const r = await done;
      showError(pad, null);
      if (!pad.dirty) pad.form.querySelector(".saved").textContent = `kept ${r.draft.updated.slice(11, 19)}`;
    } catch (e) {
      pad.dirty = true;                 // not kept: keep it on screen and say so
      showError(pad, e);
    } finally {
      if (pad.saving === done) pad.saving = null;
    }
  }

  async function stampPad(p, pad) {
    try {
      if (pad.dirty || pad.timer) await save(p, pad);
      if (pad.saving) await pad.saving;
      const r = await post("stamp", {position: p});
      showError(pad, null);
      pad.form.querySelector(".saved").textContent = `stamped slip ${r.stamp.slip}`;
      pad.key = null;
    } catch (e) { showError(pad, e); }
    resync();
  }

  function showError(pad, e) {
    const box = pad.form && pad.form.querySelector(".error");
    if (box) box.textContent = e ? e.message : "";
  }

  async function drawHistory(box, customer, caller) {
    const k = `${customer}|${caller || ""}`;
    let h = histories.get(k);
    if (!h) {
      try {
        h = await get("history", Object.fromEntries(Object.entries({customer, caller}).filter(([, v]) => v)));
        histories.set(k, h);
      } catch (e) { box.textContent = e.message; return; }
    }
    box.replaceChildren();
    const lines = [];
    if (caller) {
      lines.push(`This caller: ${h.caller_calls.length} recent call(s)` +
        (h.caller_calls[0] ? `, last ${when(h.caller_calls[0].offered)} on ${h.caller_calls[0].line} (${h.caller_calls[0].outcome})` : ""));
    }
    for (const c of h.customer_calls.slice(0, 3)) lines.push(`Call ${when(c.offered)} from ${c.caller || "?"}: ${c.outcome}`);
    for (const m of h.messages.slice(0, 3)) lines.push(`Slip ${m.slip} ${when(m.time)}: ${m.text || "(recording)"}`);
    if (!lines.length) lines.push("No earlier calls or messages.");
    for (const t of lines) box.append(el("div", null, t));
  }

  // -- the rack ---------------------------------------------------------------
  let checkingIn = null;
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
      ci.addEventListener("click", () => checkIn(b.customer));
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

  async function checkIn(customer) {
    checkingIn = customer;
    await drawCheckIn();
  }

  async function drawCheckIn() {
    const box = $("checkin");
    let r;
    try { r = await post("check-in", {customer: checkingIn}); } catch (e) {
      box.hidden = false; box.textContent = e.message; return;
    }
    box.hidden = false;
    box.className = "box checkin";
    box.replaceChildren();
    const h = el("h3");
    h.append(el("span", "who", `Check-in: ${r.name} · ${r.waiting.length} waiting`));
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
        try { await post("read-back", {slip: m.slip, position: 1}); } catch (e) { alert(e.message); }
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
      const r = await get("rack");   // names of customers with waiting messages, then any seen
      const sel = $("q-customer");
      const have = new Set([...sel.options].map((o) => o.value));
      const add = (id, name) => {
        if (!id || have.has(id)) return;
        have.add(id);
        const o = el("option", null, name || id);
        o.value = id;
        sel.append(o);
      };
      for (const b of r.rack) add(b.customer, b.name);
      const tc = snap && snap.timeclock || {};
      for (const c of Object.values(tc.cards || {})) add(c.customer, c.name);
      for (const c of Object.values(tc.offered || {})) add(c.customer, c.name);
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
