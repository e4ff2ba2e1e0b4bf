// Agent console: queue, conversation view, replies, notes, live updates over a websocket.
(function () {
  "use strict";
  const $ = (id) => document.getElementById(id);
  const state = { me: null, queue: new Map(), selected: null, view: null, agents: [], articles: [], lastTyping: 0 };

  async function call(method, path, body) {
    const response = await fetch(path, {
      method,
      credentials: "same-origin",
      headers: body ? { "Content-Type": "application/json" } : {},
      body: body ? JSON.stringify(body) : undefined,
    });
    const data = await response.json().catch(() => ({}));
    if (response.status === 401 && path !== "/api/login") showLogin();
    if (!response.ok) throw new Error(data.error || response.statusText);
    return data;
  }

  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(attrs || {})) {
      if (key === "class") node.className = value;
      else if (key.startsWith("data-")) node.setAttribute(key, value);
      else node[key] = value;
    }
    for (const child of children) if (child != null) node.append(child);
    return node;
  }

  const minutes = (seconds) => (seconds < 60 ? "<1 min" : Math.round(seconds / 60) + " min");
  const time = (ts) => new Date(ts * 1000).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });

  // --- login -------------------------------------------------------------
  function showLogin() {
    $("app").hidden = true;
    $("login").hidden = false;
  }

  $("login-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    $("login-error").textContent = "";
    try {
      await call("POST", "/api/login", { username: $("login-username").value, password: $("login-password").value });
      $("login-password").value = "";
      await start();
    } catch (err) {
      $("login-error").textContent = err.message;
    }
  });

  $("logout").addEventListener("click", async () => {
    await call("POST", "/api/logout").catch(() => {});
    location.reload();
  });

  // --- queue -------------------------------------------------------------
  async function loadQueue() {
    const data = await call("GET", "/api/conversations");
    state.queue = new Map(data.conversations.map((item) => [item.escalation.conversation_id, item]));
    renderQueue(false);
  }

  function renderQueue(isNew) {
    const list = $("queue");
    list.replaceChildren();
    const items = [...state.queue.values()].sort((a, b) => a.escalation.created_at - b.escalation.created_at);
    for (const { escalation: e, summary } of items) {
      const item = el(
        "li",
        { class: "queue__item" + (e.conversation_id === state.selected ? " is-selected" : ""), "data-conversation": e.conversation_id, "data-status": e.status },
        el("span", { class: "tag status-" + e.status }, e.status === "assigned" ? "with " + e.owner : "waiting " + minutes(Date.now() / 1000 - e.created_at)),
        el("span", { class: "tag reason-" + e.reason }, e.reason.replace(/_/g, " ")),
        el("span", { class: "tag" }, e.language),
        el("span", { class: "tag" }, e.channel),
        e.after_hours ? el("span", { class: "tag" }, "after hours") : null,
        el("span", { class: "line" }, summary || "")
      );
      item.addEventListener("click", () => select(e.conversation_id));
      list.append(item);
    }
    $("queue-empty").hidden = items.length > 0;
    const waiting = items.filter((i) => i.escalation.status === "waiting").length;
    const badge = $("badge");
    badge.textContent = String(waiting);
    badge.classList.toggle("is-zero", waiting === 0);
    if (isNew) {
      badge.classList.remove("is-new");
      void badge.offsetWidth; // restart the animation
      badge.classList.add("is-new");
      beep();
      document.title = `(${waiting}) Brightcart – agent console`;
    }
  }

  function beep() {
    try {
      const audio = new AudioContext();
      const tone = audio.createOscillator();
      tone.frequency.value = 880;
      tone.connect(audio.destination);
      tone.start();
      tone.stop(audio.currentTime + 0.15);
    } catch (err) {
      /* no sound available: the badge still shows it */
    }
  }

  // --- one conversation --------------------------------------------------
  async function select(conversationId) {
    state.selected = conversationId;
    renderQueue(false);
    try {
      state.view = await call("GET", "/api/conversations/" + encodeURIComponent(conversationId));
    } catch (err) {
      $("c-error").textContent = err.message;
      return;
    }
    await loadHelpers(state.view.escalation ? state.view.escalation.language : "en");
    renderConversation();
  }

  function renderConversation() {
    const v = state.view;
    const e = v.escalation || {};
    $("conversation").hidden = false;
    $("c-title").textContent = `Conversation ${v.conversation_id.slice(0, 12)}`;
    $("c-meta").textContent = [e.channel, e.language, e.status === "assigned" ? "owner: " + e.owner : e.status, e.created_at ? "since " + time(e.created_at) : ""].filter(Boolean).join(" · ");
    $("c-reason").textContent = v.summary ? v.summary.reason : "";
    $("c-wants").textContent = v.summary ? v.summary.wants : "";
    $("c-answered").textContent = v.summary && v.summary.bot_answered.length ? v.summary.bot_answered.join(", ") : "no article";
    $("c-contact-row").hidden = !e.contact;
    $("c-contact").textContent = e.contact || "";
    const mine = e.status === "assigned" && e.owner === state.me.username;
    const open = e.status === "waiting" || e.status === "assigned";
    $("claim").hidden = !(e.status === "waiting");
    $("handback").disabled = !(open && (mine || state.me.role === "admin"));
    $("resolve").disabled = $("handback").disabled;
    $("send").disabled = !mine;
    $("reply").disabled = !mine;
    $("reply").placeholder = mine ? "Reply to the customer" : open ? "Claim the conversation to reply" : "This conversation is closed";
    renderAssign(e, open);
    const transcript = $("transcript");
    transcript.replaceChildren(...v.transcript.map(line));
    transcript.scrollTop = transcript.scrollHeight;
    $("notes").replaceChildren(...v.notes.map(note));
    renderCustomer(v.customer);
    renderArticlePicks();
    $("earlier").replaceChildren(
      ...(v.earlier.length ? v.earlier.map(earlierItem) : [el("li", { class: "muted" }, "none")])
    );
  }

  function earlierItem(x) {
    const item = el("li", { class: "earlier__item", "data-conversation": x.conversation_id }, `${new Date(x.created_at * 1000).toLocaleDateString()} · ${x.channel} · ${x.status} — ${x.first_message || ""}`);
    item.addEventListener("click", () => select(x.conversation_id));
    return item;
  }

  // The customer's other conversations (linked by a matching contact or by an agent), with undo.
  function renderCustomer(customer) {
    $("c-contacts").textContent = customer.contacts.length ? customer.contacts.join(", ") : "no contact given";
    const items = customer.linked.map((c) => {
      const open = el("button", { type: "button", class: "link", title: c.conversation_id }, `${c.channel} · ${c.conversation_id.slice(0, 24)}`);
      open.addEventListener("click", () => select(c.conversation_id));
      const unlink = el("button", { type: "button", class: "unlink" }, "Unlink");
      unlink.addEventListener("click", () => act("unlink", undefined, c.conversation_id));
      return el("li", { "data-conversation": c.conversation_id }, open, " ", unlink);
    });
    $("linked").replaceChildren(...(items.length ? items : [el("li", { class: "muted" }, "no other conversations linked")]));
  }

  function renderAssign(e, open) {
    const select = $("assign");
    select.hidden = !(state.me.role === "admin" && open);
    if (select.hidden) return;
    select.replaceChildren(el("option", { value: "" }, "Assign to…"), ...state.agents.map((a) => el("option", { value: a.username }, a.display_name)));
  }

  function line(l) {
    const from = l.from === "system" ? "system" : l.from;
    const item = el("li", { class: "from-" + from, "data-from": from }, l.agent ? el("b", {}, l.agent + ": ") : null, l.text || "");
    if (l.from === "customer" && l.intent) {
      item.append(el("span", { class: "understood" }, `understood: ${l.intent} (${Math.round((l.confidence || 0) * 100)}%)`));
    }
    if (l.kb_article) item.append(el("span", { class: "understood" }, `article: ${l.kb_article} (score ${l.score})`));
    return item;
  }

  const note = (n) => el("li", {}, el("b", {}, n.agent + ": "), n.text);

  async function loadHelpers(language) {
    const [canned, articles] = await Promise.all([
      call("GET", "/api/canned-replies?language=" + language),
      call("GET", "/api/articles?language=" + language),
    ]);
    $("canned").replaceChildren(el("option", { value: "" }, "Canned reply…"), ...canned.replies.map((r) => el("option", { value: r.text }, r.name.replace(/_/g, " "))));
    state.articles = articles.articles;
  }

  // One click inserts an article: the ones the bot offered in this conversation first, then matches.
  function renderArticlePicks() {
    const v = state.view;
    const query = $("article-filter").value.trim().toLowerCase();
    const offered = new Set([
      ...v.transcript.map((l) => l.kb_article).filter(Boolean),
      ...((v.escalation && v.escalation.articles_offered) || []).map((a) => a.article_id),
    ]);
    const picks = query
      ? state.articles.filter((a) => a.title.toLowerCase().includes(query) || a.id.includes(query))
      : state.articles.filter((a) => offered.has(a.id));
    $("article-picks").replaceChildren(
      ...picks.slice(0, 6).map((a) => {
        const pick = el("button", { type: "button", class: "pick", "data-article": a.id, title: "Insert into the reply" }, "+ " + a.title);
        pick.addEventListener("click", () => insert(a.text));
        return el("li", {}, pick);
      })
    );
  }

  // --- actions -----------------------------------------------------------
  // `path` on the selected conversation, or on `target` (another of the customer's conversations).
  async function act(path, body, target) {
    $("c-error").textContent = "";
    try {
      const result = await call("POST", `/api/conversations/${encodeURIComponent(target || state.selected)}/${path}`, body);
      await select(state.selected);
      // A reply that waits (WhatsApp template outside 24 hours): say so, the agent must know.
      if (result && result.delivered === false && result.reason) $("c-error").textContent = result.reason;
    } catch (err) {
      $("c-error").textContent = err.message;
    }
  }

  $("claim").addEventListener("click", () => act("claim"));
  $("handback").addEventListener("click", () => act("handback"));
  $("resolve").addEventListener("click", () => act("resolve"));
  $("assign").addEventListener("change", (event) => event.target.value && act("claim", { agent: event.target.value }));

  $("composer").addEventListener("submit", async (event) => {
    event.preventDefault();
    const text = $("reply").value.trim();
    if (!text) return;
    $("reply").value = "";
    await act("messages", { text });
  });

  $("link-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const other = $("link-with").value.trim();
    if (!other || !state.selected) return;
    $("link-with").value = "";
    await act("link", { with: other });
  });

  // The customer sees "Agent is typing…" while the agent writes or inserts a reply (at most every 3 s).
  function noteTyping() {
    if (Date.now() - state.lastTyping < 3000 || !state.selected) return;
    state.lastTyping = Date.now();
    call("POST", `/api/conversations/${encodeURIComponent(state.selected)}/typing`).catch(() => {});
  }

  $("reply").addEventListener("input", noteTyping);

  $("canned").addEventListener("change", (event) => {
    if (!event.target.value) return;
    insert(event.target.value);
    event.target.value = "";
  });

  $("article-filter").addEventListener("input", () => state.view && renderArticlePicks());

  function insert(text) {
    const box = $("reply");
    box.value = box.value ? box.value + "\n\n" + text : text;
    box.focus();
    noteTyping();
  }

  $("note-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const text = $("note").value.trim();
    if (!text || !state.selected) return;
    $("note").value = "";
    try {
      await call("POST", `/api/conversations/${encodeURIComponent(state.selected)}/notes`, { text });
    } catch (err) {
      $("c-error").textContent = err.message;
    }
  });

  // --- live updates ------------------------------------------------------
  let typingTimer = null;

  function connect() {
    const ws = new WebSocket((location.protocol === "https:" ? "wss://" : "ws://") + location.host + "/api/ws");
    ws.onopen = () => {
      $("live").textContent = "live";
      $("live").classList.add("is-on");
      loadQueue().catch(() => {}); // catch up on what changed while disconnected
    };
    ws.onclose = () => {
      $("live").textContent = "reconnecting…";
      $("live").classList.remove("is-on");
      setTimeout(connect, 2000);
    };
    ws.onmessage = (message) => onLive(JSON.parse(message.data));
  }

  function onLive(msg) {
    if (msg.type === "escalation") {
      const e = msg.escalation;
      const known = state.queue.get(e.conversation_id);
      if (e.status === "waiting" || e.status === "assigned") {
        state.queue.set(e.conversation_id, { escalation: e, summary: known ? known.summary : (e.turns[0] || {}).text });
        if (msg.change === "opened") loadQueue().then(() => renderQueue(true)).catch(() => renderQueue(true));
        else renderQueue(false);
      } else {
        state.queue.delete(e.conversation_id);
        renderQueue(false);
      }
      if (e.conversation_id === state.selected) select(state.selected);
    } else if (msg.type === "event" && msg.conversation_id === state.selected && state.view) {
      if (msg.event === "user" || msg.event === "bot") {
        const from = msg.event === "user" ? "customer" : msg.agent ? "agent" : "bot";
        state.view.transcript.push({ from, text: msg.text, agent: msg.agent, intent: msg.intent, confidence: msg.confidence, kb_article: msg.kb_article });
        $("transcript").append(line(state.view.transcript[state.view.transcript.length - 1]));
        $("transcript").scrollTop = $("transcript").scrollHeight;
        if (from === "customer") $("typing").hidden = true;
      }
    } else if (msg.type === "typing" && msg.from === "customer" && msg.conversation_id === state.selected) {
      $("typing").hidden = false;
      clearTimeout(typingTimer);
      typingTimer = setTimeout(() => ($("typing").hidden = true), 5000);
    } else if (msg.type === "note" && state.view && state.view.escalation && msg.escalation_id === state.view.escalation.id) {
      state.view.notes.push(msg.note);
      $("notes").append(note(msg.note));
    }
  }

  // --- start -------------------------------------------------------------
  async function start() {
    const { agent } = await call("GET", "/api/me");
    state.me = agent;
    $("whoami").textContent = `${agent.display_name} (${agent.role})`;
    $("login").hidden = true;
    $("app").hidden = false;
    if (agent.role === "admin") state.agents = (await call("GET", "/api/agents")).agents;
    $("analytics-link").hidden = agent.role !== "admin";
    await loadQueue();
    connect();
  }

  start().catch(showLogin);
})();
