// Support analytics (admins): fetches /api/analytics and draws SVG bar charts.
(function () {
  "use strict";
  const $ = (id) => document.getElementById(id);
  const SVG = "http://www.w3.org/2000/svg";
  const COLORS = ["#2d5be3", "#4cb782", "#f4b400", "#e8710a", "#b3261e", "#8e44ad", "#00897b"];
  const pct = (x) => (x == null ? "–" : Math.round(x * 1000) / 10 + "%");

  function svg(tag, attrs, text) {
    const node = document.createElementNS(SVG, tag);
    for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
    if (text != null) node.textContent = text;
    return node;
  }

  // Horizontal bars: one row per label.
  function bars(target, rows) {
    const box = $(target);
    box.replaceChildren();
    if (!rows.length) {
      box.append(Object.assign(document.createElement("p"), { className: "empty", textContent: "no data yet" }));
      return;
    }
    const max = Math.max(...rows.map((r) => r[1]), 1);
    const height = rows.length * 26 + 4;
    const chart = svg("svg", { viewBox: `0 0 400 ${height}`, role: "img", "aria-label": target });
    rows.forEach(([label, value], i) => {
      const y = i * 26 + 2;
      chart.append(svg("text", { x: 0, y: y + 16, "font-size": 12, fill: "#394256" }, String(label).slice(0, 28)));
      chart.append(svg("rect", { x: 170, y, width: Math.max(2, (value / max) * 190), height: 20, rx: 3, fill: COLORS[i % COLORS.length] }));
      chart.append(svg("text", { x: 175 + (value / max) * 190, y: y + 15, "font-size": 12, fill: "#1d2433" }, String(value)));
    });
    box.append(chart);
  }

  // Vertical columns over time (days or weeks).
  function columns(target, series) {
    const box = $(target);
    box.replaceChildren();
    if (!series.length) {
      box.append(Object.assign(document.createElement("p"), { className: "empty", textContent: "no data yet" }));
      return;
    }
    const max = Math.max(...series.map((s) => s[1]), 1);
    const width = 400;
    const step = width / series.length;
    const chart = svg("svg", { viewBox: `0 0 ${width} 170`, role: "img", "aria-label": target });
    series.forEach(([label, value], i) => {
      const h = (value / max) * 130;
      chart.append(svg("rect", { x: i * step + 2, y: 140 - h, width: Math.max(2, step - 4), height: h, fill: COLORS[0] }));
      chart.append(svg("text", { x: i * step + step / 2, y: 136 - h, "font-size": 10, "text-anchor": "middle" }, String(value)));
      if (series.length <= 14 || i % Math.ceil(series.length / 14) === 0) {
        chart.append(svg("text", { x: i * step + step / 2, y: 158, "font-size": 9, "text-anchor": "middle", fill: "#6b7588" }, label.slice(5)));
      }
    });
    box.append(chart);
  }

  const entries = (obj) => Object.entries(obj || {}).sort((a, b) => b[1] - a[1]);

  async function load() {
    $("error").textContent = "";
    const response = await fetch("/api/analytics?days=" + $("days").value, { credentials: "same-origin" });
    const data = await response.json().catch(() => ({}));
    if (response.status === 401) {
      location.href = "/console";
      return;
    }
    if (!response.ok) {
      $("error").textContent = data.error || response.statusText;
      return;
    }
    $("report").hidden = false;
    $("k-conversations").textContent = data.conversations;
    $("k-containment").textContent = pct(data.containment_rate);
    $("k-handoff").textContent = pct(data.handoff_rate);
    $("k-csat").textContent = data.satisfaction.average == null ? "–" : data.satisfaction.average;
    bars("c-containment", [["bot alone", data.contained], ["involved a person", data.involved_a_person]]);
    bars("c-reasons", entries(data.handoff_by_reason).map(([k, v]) => [k.replace(/_/g, " "), v]));
    columns("c-per-day", Object.entries(data.escalations_per_day).map(([day, c]) => [day, c.total]));
    bars("c-channels", entries(data.conversations_by_channel));
    bars("c-languages", entries(data.conversations_by_language));
    bars("c-outcomes", entries(data.outcomes).map(([k, v]) => [k.replace(/_/g, " "), v]));
    bars("c-articles", data.most_used_articles.map((a) => [a.article_id, a.answers]));
    bars("c-unhelpful", data.least_helpful_articles.map((a) => [a.article_id, a.unhelpful]));
    const table = $("t-unhelpful");
    table.replaceChildren();
    table.insertAdjacentHTML("beforeend", "<tr><th>article</th><th>answers</th><th>👍</th><th>👎</th><th>helpful</th></tr>");
    for (const a of data.least_helpful_articles) {
      const row = table.insertRow();
      for (const value of [a.article_id, a.answers, a.helpful, a.unhelpful, pct(a.helpful_rate)]) row.insertCell().textContent = value;
    }
    columns("c-complaints", Object.entries(data.complaints_per_week));
    bars("c-csat", Object.entries(data.satisfaction.distribution).reverse().map(([k, v]) => [k + " ★", v]));
    document.querySelectorAll("[data-def]").forEach((p) => (p.textContent = data.definitions[p.dataset.def] || ""));
  }

  $("days").addEventListener("change", () => load().catch((e) => ($("error").textContent = e.message)));
  load().catch((e) => ($("error").textContent = e.message));
})();
