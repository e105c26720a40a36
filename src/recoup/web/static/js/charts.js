// Draws ECharts charts described by the server: an element with data-chart="ID" reads the
// JSON block <script type="application/json" id="ID"> (no inline script, so the CSP holds).
"use strict";

(function () {
  const palette = ["#1f5fae", "#d9822b", "#2e8b57", "#8e44ad", "#c0392b"];

  function percentLabel(value) {
    return value === null || value === undefined ? "—" : value + "%";
  }

  function build(spec) {
    const series = spec.series.map((item, index) => ({
      name: item.name,
      type: item.type || "line",
      data: item.data,
      smooth: false,
      connectNulls: true,
      symbolSize: 6,
      itemStyle: { color: item.dashed ? "#9aa5b1" : palette[index % palette.length] },
      lineStyle: item.dashed ? { type: "dashed", width: 1 } : { width: 2 },
    }));
    if (spec.thresholds && series.length) {
      series[0].markLine = {
        silent: true,
        symbol: "none",
        data: spec.thresholds.map((line, index) => ({
          yAxis: line.value,
          name: line.name,
          label: { position: index === 0 ? "insideStartTop" : "insideEndTop", formatter: line.name + " " + line.value },
          lineStyle: { color: index === 0 ? "#d9822b" : "#c0392b", type: "dashed" },
        })),
      };
    }
    return {
      animation: false,
      grid: { left: 56, right: 24, top: 48, bottom: 56 },
      legend: { top: 0, type: "scroll" },
      tooltip: {
        trigger: "axis",
        valueFormatter: spec.percent ? percentLabel : undefined,
      },
      xAxis: {
        type: "category",
        data: spec.x,
        name: spec.x_name,
        nameLocation: "middle",
        nameGap: 32,
      },
      yAxis: {
        type: "value",
        name: spec.y_name,
        axisLabel: spec.percent ? { formatter: "{value}%" } : {},
      },
      series: series,
    };
  }

  function draw() {
    if (typeof window.echarts === "undefined") {
      return;
    }
    document.querySelectorAll("[data-chart]").forEach((element) => {
      const source = document.getElementById(element.dataset.chart);
      if (!source) {
        return;
      }
      const chart = window.echarts.init(element, null, { renderer: "canvas" });
      chart.setOption(build(JSON.parse(source.textContent)));
      element.dataset.rendered = "true";
      window.addEventListener("resize", () => chart.resize());
    });
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", draw);
  } else {
    draw();
  }
})();
