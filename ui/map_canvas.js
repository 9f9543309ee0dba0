// A map of 2-D points on a canvas, shared by the Latent space explorer and the Interpolate
// scrubber (this file goes in front of theirs): the class colours, a square plot area with room
// for tick numbers, the grid and the points drawn once into a layer that each move copies.

const COLOURS = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd",
                 "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"];
// Room around the map's plot area for the tick numbers (px).
const MARGIN = { left: 40, right: 8, top: 8, bottom: 24 };

function setupCanvas(canvas, width, height) {
    const ratio = window.devicePixelRatio || 1;
    canvas.width = width * ratio;
    canvas.height = height * ratio;
    canvas.style.width = width + "px";
    canvas.style.height = height + "px";
    const ctx = canvas.getContext("2d");
    ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
    return ctx;
}

// A tick spacing of 1, 2 or 5 times a power of ten giving about `count` ticks over `span`.
function niceStep(span, count) {
    const raw = span / Math.max(count, 1);
    const power = Math.pow(10, Math.floor(Math.log10(raw)));
    for (const m of [1, 2, 5, 10]) if (m * power >= raw) return m * power;
    return 10 * power;
}

function tickLabel(v, step) {
    const decimals = Math.max(0, -Math.floor(Math.log10(step) + 1e-9));
    const text = Number(v.toFixed(decimals)) === 0 ? (0).toFixed(decimals) : v.toFixed(decimals);
    return text.replace("-", "\u2212");
}

// The smallest square view around the points (N, 2 interleaved) and any extra [x, y] pairs,
// padded by 4% on each side.
function squareView(xy, extra) {
    let lo = Infinity, hi = -Infinity;
    for (const v of xy) { lo = Math.min(lo, v); hi = Math.max(hi, v); }
    for (const pair of extra || []) for (const v of pair) { lo = Math.min(lo, v); hi = Math.max(hi, v); }
    const pad = 0.04 * (hi - lo || 1);
    return { x0: lo - pad, x1: hi + pad, y0: lo - pad, y1: hi + pad };
}

// Canvas positions of map coordinates for a square plot of `plot` px showing `view`.
function mapScale(plot, view) {
    return {
        toX: (v) => MARGIN.left + plot * (v - view.x0) / (view.x1 - view.x0),
        toY: (v) => MARGIN.top + plot * (1 - (v - view.y0) / (view.y1 - view.y0)),
        fromX: (px) => view.x0 + (px - MARGIN.left) / plot * (view.x1 - view.x0),
        fromY: (py) => view.y0 + (1 - (py - MARGIN.top) / plot) * (view.y1 - view.y0),
    };
}

// A layer (an off-screen canvas of width x height px) with the grid, the tick numbers in
// `fontPx` and the points coloured by class.
function drawMapLayer(width, height, plot, view, xy, labels, fontPx) {
    const layer = document.createElement("canvas");
    const ctx = setupCanvas(layer, width, height);
    const { toX, toY } = mapScale(plot, view);
    ctx.fillStyle = "#fff";
    ctx.fillRect(0, 0, width, height);
    const step = niceStep(view.x1 - view.x0, plot / 45);
    ctx.font = `${fontPx}px sans-serif`;
    ctx.fillStyle = "#333";
    ctx.lineWidth = 1;
    for (const [from, to, axis] of [[view.x0, view.x1, "x"], [view.y0, view.y1, "y"]]) {
        for (let g = Math.ceil(from / step) * step; g <= to + 1e-9; g += step) {
            const zero = Math.abs(g) < step / 2;
            ctx.strokeStyle = zero ? "#aaa" : "#e6e6e6";
            ctx.beginPath();
            if (axis === "x") {
                const x = toX(g);
                ctx.moveTo(x, MARGIN.top); ctx.lineTo(x, MARGIN.top + plot); ctx.stroke();
                ctx.textAlign = "center"; ctx.textBaseline = "top";
                ctx.fillText(tickLabel(g, step), x, MARGIN.top + plot + 4);
            } else {
                const y = toY(g);
                ctx.moveTo(MARGIN.left, y); ctx.lineTo(MARGIN.left + plot, y); ctx.stroke();
                ctx.textAlign = "right"; ctx.textBaseline = "middle";
                ctx.fillText(tickLabel(g, step), MARGIN.left - 4, y);
            }
        }
    }
    ctx.strokeStyle = "#bbb";
    ctx.strokeRect(MARGIN.left + 0.5, MARGIN.top + 0.5, plot - 1, plot - 1);
    ctx.save();
    ctx.beginPath();
    ctx.rect(MARGIN.left, MARGIN.top, plot, plot);
    ctx.clip();
    ctx.globalAlpha = 0.6;
    for (let i = 0; i < labels.length; i++) {
        ctx.fillStyle = COLOURS[labels[i] % 10];
        ctx.fillRect(toX(xy[2 * i]) - 1.5, toY(xy[2 * i + 1]) - 1.5, 3, 3);
    }
    ctx.restore();
    return layer;
}

// A latent point z on the map of a linear projection: (z - mean) times the components (D x 2,
// row-major), as vae_core.vae.projection.Projection computes it.
function project(z, mean, comps) {
    let mx = 0, my = 0;
    for (let k = 0; k < z.length; k++) {
        mx += (z[k] - mean[k]) * comps[2 * k];
        my += (z[k] - mean[k]) * comps[2 * k + 1];
    }
    return [mx, my];
}

// A black cross at canvas position (cx, cy), kept inside the plot area.
function drawCross(ctx, plot, cx, cy) {
    ctx.save();
    ctx.beginPath();
    ctx.rect(MARGIN.left, MARGIN.top, plot, plot);
    ctx.clip();
    ctx.strokeStyle = "#000";
    ctx.lineWidth = 3;
    ctx.beginPath();
    ctx.moveTo(cx - 8, cy - 8); ctx.lineTo(cx + 8, cy + 8);
    ctx.moveTo(cx + 8, cy - 8); ctx.lineTo(cx - 8, cy + 8);
    ctx.stroke();
    ctx.restore();
}
