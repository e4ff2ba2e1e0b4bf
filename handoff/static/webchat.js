// Web chat widget over the Rasa server's socket.io channel (bot/channels/webchat.py).
// The session id and its signature are kept in localStorage, so a reload resumes
// the same conversation; the history is kept there too and shown again.
(function () {
  "use strict";
  const STORE_KEY = "brightcart.chat";
  const saved = JSON.parse(localStorage.getItem(STORE_KEY) || "{}");
  const state = { session_id: saved.session_id || null, token: saved.token || null, history: saved.history || [] };
  const list = document.getElementById("messages");
  const form = document.getElementById("composer");
  const input = document.getElementById("input");
  const send = document.getElementById("send");
  const status = document.getElementById("status");
  const typing = document.getElementById("typing");
  const language = (navigator.language || "en").slice(0, 2).toLowerCase();
  let socket = null;

  function persist() {
    state.history = state.history.slice(-200);
    localStorage.setItem(STORE_KEY, JSON.stringify(state));
  }

  // Articles mark key facts with **bold**; show them bold, everything else as plain text.
  function appendWithBold(parent, text) {
    text.split(/\*\*(.+?)\*\*/g).forEach((part, i) => {
      if (!part) return;
      if (i % 2) {
        const strong = document.createElement("strong");
        strong.textContent = part;
        parent.appendChild(strong);
      } else {
        parent.appendChild(document.createTextNode(part));
      }
    });
  }

  function render(message) {
    const item = document.createElement("li");
    item.className = "msg msg--" + message.from;
    item.dataset.from = message.from;
    if (message.kb_article) item.dataset.kbArticle = message.kb_article;
    if (message.from === "agent") {
      const who = document.createElement("span");
      who.className = "msg__who";
      who.textContent = message.agent || "Agent";
      item.appendChild(who);
    }
    const text = document.createElement("span");
    text.className = "msg__text";
    appendWithBold(text, message.text || "");
    item.appendChild(text);
    if (message.buttons && message.buttons.length) {
      const row = document.createElement("div");
      row.className = "msg__buttons";
      for (const button of message.buttons) {
        const el = document.createElement("button");
        el.type = "button";
        el.textContent = button.title;
        el.addEventListener("click", () => {
          row.querySelectorAll("button").forEach((b) => (b.disabled = true));
          say(button.payload, button.title);
        });
        row.appendChild(el);
      }
      item.appendChild(row);
    }
    list.appendChild(item);
    list.scrollTop = list.scrollHeight;
  }

  function add(message) {
    state.history.push(message);
    persist();
    render(message);
  }

  function say(payload, shown) {
    if (!state.session_id) return;
    add({ from: "customer", text: shown || payload });
    lastTyping = 0; // the next keystroke starts a new "typing" notice
    if (socket && socket.connected) socket.emit("user_uttered", { message: payload, metadata: { language: language } });
    else sayWhileBotIsDown(payload);
  }

  // The bot's server is unreachable: the agent service keeps the message for people and says so.
  function sayWhileBotIsDown(text) {
    fetch("/webchat/offline", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ session_id: state.session_id, token: state.token, text: text, language: language }),
    })
      .then((r) => r.json().then((data) => (data.text ? data : Promise.reject(r.status))))
      .then((data) => add({ from: "bot", text: data.text, handoff: data.custom && data.custom.handoff.status }))
      .catch(() => add({ from: "system", text: "Your message could not be sent. Please check your connection and try again." }));
  }

  state.history.forEach(render);

  fetch("/webchat/config").then((r) => r.json()).then((config) => {
    const url = config.rasa_url || location.protocol + "//" + location.hostname + ":" + config.rasa_port;
    // websocket only: long polling needs every request of a session at the same Rasa worker (sticky sessions).
    socket = io(url, { path: "/socket.io", transports: ["websocket"] });
    socket.on("connect", () => {
      status.textContent = "connecting…";
      socket.emit("session_request", { session_id: state.session_id, token: state.token });
    });
    socket.on("session_confirm", (session) => {
      if (state.session_id && state.session_id !== session.session_id) {
        state.history = []; // the server did not accept the old session: start clean
        list.innerHTML = "";
      }
      state.session_id = session.session_id;
      state.token = session.token;
      persist();
      loadHistory();
      openSideChannel();
      status.textContent = "online";
      document.body.dataset.session = session.session_id;
      input.disabled = send.disabled = false;
      input.focus();
    });
    socket.on("disconnect", () => {
      status.textContent = "reconnecting…"; // messages meanwhile go to people (sayWhileBotIsDown)
      input.disabled = send.disabled = !state.session_id;
    });
    socket.on("bot_uttered", (message) => {
      typing.hidden = true;
      const custom = message.custom || {};
      const agent = custom.agent;
      add({
        from: agent ? "agent" : "bot",
        agent: agent && agent.name,
        text: message.text,
        buttons: message.buttons,
        kb_article: custom.kb_article,
        handoff: custom.handoff && custom.handoff.status,
      });
    });
  });

  // The server's record is the truth: replies sent while the page was closed appear on return.
  function loadHistory() {
    const query = new URLSearchParams({ session_id: state.session_id, token: state.token });
    fetch("/webchat/history?" + query)
      .then((r) => (r.ok ? r.json() : Promise.reject(r.status)))
      .then((data) => {
        if (!data.messages.length) return;
        state.history = data.messages.map((m, i) => (i === data.messages.length - 1 ? m : { ...m, buttons: [] }));
        persist();
        list.innerHTML = "";
        state.history.forEach(render);
      })
      .catch(() => {}); // offline history stays as it was
  }

  // Typing indicators both ways, through the agent service (only while a person has the chat).
  let side = null;
  let lastTyping = 0;
  let typingTimer = null;
  function openSideChannel() {
    if (side) return;
    const query = new URLSearchParams({ session_id: state.session_id, token: state.token });
    side = new WebSocket((location.protocol === "https:" ? "wss://" : "ws://") + location.host + "/webchat/ws?" + query);
    side.onmessage = (message) => {
      const data = JSON.parse(message.data);
      if (data.type !== "typing") return;
      typing.hidden = false;
      clearTimeout(typingTimer);
      typingTimer = setTimeout(() => (typing.hidden = true), 5000);
    };
    side.onclose = () => {
      side = null;
      setTimeout(openSideChannel, 3000);
    };
  }

  input.addEventListener("input", () => {
    if (!side || side.readyState !== WebSocket.OPEN || Date.now() - lastTyping < 3000) return;
    lastTyping = Date.now();
    side.send('{"type":"typing"}');
  });

  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const text = input.value.trim();
    if (!text) return;
    input.value = "";
    say(text);
  });
})();
