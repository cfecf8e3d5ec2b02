/* IOI admin area: draws the dashboard charts from their data-chart attribute, follows a running
   email batch, and asks before sending. Everything works without it: the tables carry the numbers. */
(function () {
  "use strict";
  document.documentElement.classList.add("js");

  function colourAt(colours, i) {
    return colours.length ? colours[i % colours.length] : "#2f6f9f";
  }

  function chartConfig(spec) {
    var colours = spec.colours || [];
    if (spec.type === "pie") {
      var first = spec.series[0];
      return {
        type: "pie",
        data: {
          labels: spec.labels,
          datasets: [{
            label: first.name,
            data: first.values,
            backgroundColor: spec.labels.map(function (_, i) { return colourAt(colours, i); })
          }]
        },
        options: { animation: false, maintainAspectRatio: false, plugins: { legend: { position: "right" } } }
      };
    }
    var stacked = spec.type === "stacked";
    var horizontal = spec.type === "hbar";
    var many = spec.series.length > 1;
    return {
      type: "bar",
      data: {
        labels: spec.labels,
        datasets: spec.series.map(function (series, i) {
          return { label: series.name, data: series.values, backgroundColor: colourAt(colours, i) };
        })
      },
      options: {
        animation: false,
        maintainAspectRatio: false,
        indexAxis: horizontal ? "y" : "x",
        plugins: { legend: { display: many, position: "bottom" } },
        scales: {
          x: { stacked: stacked, beginAtZero: true, ticks: { precision: 0 } },
          y: { stacked: stacked, beginAtZero: true, ticks: { precision: 0 } }
        }
      }
    };
  }

  function drawCharts() {
    if (typeof window.Chart === "undefined") { return; }
    document.querySelectorAll("canvas.chart[data-chart]").forEach(function (canvas) {
      try {
        new window.Chart(canvas, chartConfig(JSON.parse(canvas.dataset.chart)));
        canvas.closest(".chart-box").classList.add("drawn");
      } catch (err) {
        canvas.replaceWith(document.createTextNode("The chart could not be drawn; the table has the numbers."));
      }
    });
  }

  function followBatch() {
    var panel = document.getElementById("batch-progress");
    if (!panel) { return; }
    var url = panel.dataset.statusUrl;
    var bar = panel.querySelector("progress");
    function poll() {
      fetch(url, { credentials: "same-origin", headers: { "Accept": "application/json" } })
        .then(function (response) { return response.ok ? response.json() : null; })
        .then(function (status) {
          if (!status) { return; }
          Object.keys(status).forEach(function (key) {
            var el = panel.querySelector('[data-field="' + key + '"]');
            if (el) { el.textContent = status[key]; }
          });
          if (bar) { bar.max = status.total; bar.value = status.done; }
          if (status.status === "running") {
            window.setTimeout(poll, 1500);
          } else {
            window.setTimeout(function () { window.location.reload(); }, 1000);
          }
        })
        .catch(function () { window.setTimeout(poll, 5000); });
    }
    window.setTimeout(poll, 1000);
  }

  function confirmations() {
    document.querySelectorAll("[data-confirm]").forEach(function (button) {
      button.addEventListener("click", function (event) {
        if (!window.confirm(button.dataset.confirm)) { event.preventDefault(); }
      });
    });
    document.querySelectorAll("form.send-form").forEach(function (form) {
      form.addEventListener("submit", function () {
        // Against double clicks; the server refuses a second batch anyway.
        window.setTimeout(function () {
          form.querySelectorAll("button").forEach(function (b) { b.disabled = true; });
        }, 0);
      });
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    drawCharts();
    followBatch();
    confirmations();
  });
})();
