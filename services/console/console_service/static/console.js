// The console's pages: draw the charts (Apache ECharts, served by the console), keep the date
// preset in step with the dates, and re-read the page when a report it shows changes
// (Server-Sent Events from /events), without a reload.
(function () {
  "use strict";

  var charts = [];
  var REFRESH_DELAY = 800;
  var REFRESH_GAP = 2000;

  function yuan(v) {
    if (v === null || v === undefined || v === "-") return "—";
    return "¥" + Number(v).toLocaleString("zh-CN", { minimumFractionDigits: 2, maximumFractionDigits: 2 });
  }
  function formatter(unit) {
    if (unit === "yuan") return yuan;
    if (unit === "percent") return function (v) { return v === null || v === undefined ? "—" : Number(v).toFixed(1) + "%"; };
    return function (v) { return v === null || v === undefined ? "—" : Number(v).toLocaleString("zh-CN"); };
  }
  function axisFormatter(unit) {
    if (unit === "yuan") return function (v) { return v >= 10000 ? "¥" + (v / 10000).toFixed(1) + "万" : "¥" + v; };
    if (unit === "percent") return "{value}%";
    return "{value}";
  }

  function drawCharts(root) {
    charts.forEach(function (c) { c.dispose(); });
    charts = [];
    if (!window.echarts) return;
    root.querySelectorAll(".chart[data-chart]").forEach(function (el) {
      var option = JSON.parse(el.getAttribute("data-chart"));
      var unit = option.unit;
      delete option.unit;
      option.tooltip = option.tooltip || {};
      option.tooltip.valueFormatter = formatter(unit);
      if (option.yAxis) option.yAxis.axisLabel = { formatter: axisFormatter(unit) };
      var chart = window.echarts.init(el, null, { renderer: "canvas" });
      chart.setOption(option);
      el.setAttribute("data-drawn", "true");
      charts.push(chart);
    });
  }

  function wirePresets(root) {
    var preset = root.querySelector("select[data-preset]");
    if (!preset) return;
    root.querySelectorAll("input[data-day]").forEach(function (input) {
      input.addEventListener("change", function () { preset.value = "custom"; });
    });
  }

  function stamp() {
    var el = document.getElementById("updated");
    if (el) el.textContent = (document.documentElement.lang === "en" ? "Updated " : "已更新 ") + new Date().toLocaleTimeString();
  }

  function setLive(on) {
    var live = document.getElementById("live");
    if (!live) return;
    live.setAttribute("data-state", on ? "on" : "off");
    var label = live.getAttribute(on ? "data-on" : "data-off");
    live.title = label;
    live.querySelector("span").textContent = label;
  }

  var timer = null;
  var last = 0;
  var busy = false;
  function scheduleRefresh() {
    if (timer) return;
    var wait = Math.max(REFRESH_DELAY, last + REFRESH_GAP - Date.now());
    timer = setTimeout(function () { timer = null; refresh(); }, wait);
  }

  function refresh() {
    if (busy) { scheduleRefresh(); return; }
    busy = true;
    last = Date.now();
    fetch(window.location.href, { headers: { "X-Console-Partial": "1" }, credentials: "same-origin" })
      .then(function (response) {
        if (response.status === 401) { window.location.reload(); return null; }
        return response.text();
      })
      .then(function (html) {
        if (html === null) return;
        var main = document.getElementById("content");
        main.innerHTML = html;
        drawCharts(main);
        wirePresets(main);
        stamp();
        main.setAttribute("data-refreshed", String(Number(main.getAttribute("data-refreshed") || "0") + 1));
      })
      .catch(function () { /* the next notice tries again */ })
      .then(function () { busy = false; });
  }

  function listen() {
    var head = document.querySelector("[data-live-reports]");
    if (!head || !head.getAttribute("data-live-reports") || !window.EventSource) return;
    var params = new URLSearchParams({ reports: head.getAttribute("data-live-reports") });
    if (head.getAttribute("data-from")) params.set("from", head.getAttribute("data-from"));
    if (head.getAttribute("data-to")) params.set("to", head.getAttribute("data-to"));
    var source = new EventSource("/events?" + params.toString());
    var opened = false;
    source.addEventListener("ready", function () {
      setLive(true);
      // After a dropped connection, whatever changed meanwhile is re-read.
      if (opened) scheduleRefresh();
      opened = true;
    });
    source.addEventListener("changed", scheduleRefresh);
    source.addEventListener("resync", scheduleRefresh);
    source.onerror = function () { setLive(false); };
  }

  document.addEventListener("DOMContentLoaded", function () {
    var main = document.getElementById("content");
    if (!main) return;
    drawCharts(main);
    wirePresets(main);
    listen();
    window.addEventListener("resize", function () { charts.forEach(function (c) { c.resize(); }); });
  });
})();
