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
      grid: { left: spec.wide_axis ? 96 : 56, right: 24, top: 48, bottom: 56 },
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

  // Dashboards: a bucket waterfall, a roll-rate heat map, ranked (horizontal) bars.
  function waterfall(spec) {
    return {
      animation: false,
      grid: { left: 72, right: 24, top: 32, bottom: 40 },
      tooltip: {
        trigger: "axis",
        axisPointer: { type: "shadow" },
        formatter: (items) => {
          const item = items.find((entry) => entry.seriesIndex === 1);
          return item ? item.name + ": " + Number(item.value).toLocaleString() : "";
        },
      },
      xAxis: { type: "category", data: spec.x },
      yAxis: { type: "value", name: spec.y_name },
      series: [
        { type: "bar", stack: "all", data: spec.base, itemStyle: { color: "transparent" }, silent: true },
        {
          type: "bar",
          stack: "all",
          data: spec.values,
          itemStyle: { color: palette[0] },
          label: {
            show: true,
            position: "top",
            formatter: (item) => (item.value ? Math.round(item.value).toLocaleString() : ""),
          },
        },
      ],
    };
  }

  function heatmap(spec) {
    return {
      animation: false,
      grid: { left: 64, right: 24, top: 40, bottom: 64 },
      tooltip: { formatter: (item) => spec.y[item.value[1]] + " → " + spec.x[item.value[0]] + ": " + item.value[2] + "%" },
      xAxis: { type: "category", data: spec.x, name: spec.x_name, nameLocation: "middle", nameGap: 40, splitArea: { show: true } },
      yAxis: { type: "category", data: spec.y, name: spec.y_name, inverse: true, splitArea: { show: true } },
      visualMap: { min: 0, max: 100, calculable: false, orient: "horizontal", left: "center", top: 0, itemHeight: 120, inRange: { color: ["#f4f7fb", "#1f5fae"] } },
      series: [{ type: "heatmap", data: spec.data, label: { show: true, formatter: (item) => (item.value[2] === null ? "" : item.value[2] + "%") } }],
    };
  }

  function ranked(spec) {
    const option = build(spec);
    const category = option.xAxis;
    // The value axis names its unit under the bars: at the axis' end it was cut off at the right.
    option.xAxis = Object.assign({}, option.yAxis, { nameLocation: "middle", nameGap: 28 });
    option.yAxis = Object.assign({}, category, { inverse: true, nameLocation: "end", nameGap: 8 });
    option.grid = { left: 120, right: 32, top: 48, bottom: option.xAxis.name ? 56 : 40 };
    option.tooltip.axisPointer = { type: "shadow" };
    return option;
  }

  function optionOf(spec) {
    if (spec.kind === "waterfall") {
      return waterfall(spec);
    }
    if (spec.kind === "heatmap") {
      return heatmap(spec);
    }
    if (spec.kind === "ranked") {
      return ranked(spec);
    }
    return build(spec);
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
      chart.setOption(optionOf(JSON.parse(source.textContent)));
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
