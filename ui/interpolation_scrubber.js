// The Interpolate scrubber: a slider t in [0, 1] decodes z(t) between two codes in the browser
// (browser_decoder.js and map_canvas.js, in front of this file) beside the pixel cross-fade at
// the same t, so the image follows the pointer with no server round trip; a map of test codes
// shows the page's path and marks z(t) on it. z(t) is the page's path: linear,
// (1 - t) z_a + t z_b, or spherical (slerp), as vae_core.vae.explore.interpolate makes them.

function pathPoint(za, zb, t, method) {
    const z = new Float32Array(za.length);
    if (method === "spherical") {
        let dot = 0, na = 0, nb = 0;
        for (let k = 0; k < za.length; k++) { dot += za[k] * zb[k]; na += za[k] * za[k]; nb += zb[k] * zb[k]; }
        const cos = dot / Math.max(Math.sqrt(na) * Math.sqrt(nb), 1e-12);
        const omega = Math.acos(Math.min(1, Math.max(-1, cos)));
        if (omega >= 1e-6) {
            const a = Math.sin((1 - t) * omega) / Math.sin(omega), b = Math.sin(t * omega) / Math.sin(omega);
            for (let k = 0; k < za.length; k++) z[k] = a * za[k] + b * zb[k];
            return z;
        }
    }
    for (let k = 0; k < za.length; k++) z[k] = (1 - t) * za[k] + t * zb[k];
    return z;
}

export default function (component) {
    const { parentElement } = component;
    const data = componentData(component);
    const root = parentElement.querySelector(".scrubber");
    const state = root.__scrubber || (root.__scrubber = {});
    const els = {
        t: root.querySelector("input[data-t]"), label: root.querySelector("[data-t-label]"),
        latent: root.querySelector("canvas.latent"), pixels: root.querySelector("canvas.pixels"),
        caption: root.querySelector("[data-scrub-caption]"),
        map: root.querySelector(".map"), mapCanvas: root.querySelector("canvas.path-map"),
        axes: root.querySelector(".map .axes"),
    };
    if (state.modelKey !== data.model_key) {
        state.model = loadModel(data);
        state.modelKey = data.model_key;
    }
    state.data = data;
    state.za = Float32Array.from(data.z_a);
    state.zb = Float32Array.from(data.z_b);
    state.xa = fromBase64(data.x_a, Float32Array);
    state.xb = fromBase64(data.x_b, Float32Array);
    if (!state.bound) els.t.value = data.t;
    const m = data.map;
    els.map.hidden = !m;
    if (m) {
        const key = m.points + m.labels + JSON.stringify(m.path) + m.text_px;
        if (state.mapKey !== key) {
            state.mapKey = key;
            state.xy = fromBase64(m.points, Float32Array);
            state.labels = fromBase64(m.labels, Uint8Array);
            state.view = squareView(state.xy, m.path);
            state.layer = null;
        }
        els.axes.textContent = `horizontal: ${m.titles[0]}, vertical: ${m.titles[1]}`;
        root.style.fontSize = m.text_px + "px";
    }

    // The map as wide as it may be, up to its size: beside the slider and the images on a
    // wide page, below them on a narrow one (a projector's column).
    function layout() {
        const m = state.data.map;
        if (!m) return;
        const size = Math.min(m.size, Math.floor(root.getBoundingClientRect().width) || m.size);
        if (state.size === size && state.ctx) return;
        state.size = size;
        els.map.style.width = size + "px";
        state.plot = size - MARGIN.left - MARGIN.right;
        state.height = state.plot + MARGIN.top + MARGIN.bottom;
        state.ctx = setupCanvas(els.mapCanvas, size, state.height);
        state.layer = null;
    }

    // The path's steps joined by a line, its ends named, and z(t) as a cross.
    function drawMap(z) {
        const m = state.data.map, ctx = state.ctx;
        const fontPx = Math.max(12, Math.round(0.85 * m.text_px));
        state.layer = state.layer || drawMapLayer(state.size, state.height, state.plot, state.view, state.xy,
                                                  state.labels, fontPx);
        ctx.drawImage(state.layer, 0, 0, state.size, state.height);
        const { toX, toY } = mapScale(state.plot, state.view);
        ctx.save();
        ctx.beginPath();
        ctx.rect(MARGIN.left, MARGIN.top, state.plot, state.plot);
        ctx.clip();
        ctx.strokeStyle = "#000";
        ctx.fillStyle = "#000";
        ctx.lineWidth = 2;
        ctx.beginPath();
        m.path.forEach(([x, y], i) => (i ? ctx.lineTo(toX(x), toY(y)) : ctx.moveTo(toX(x), toY(y))));
        ctx.stroke();
        for (const [x, y] of m.path) { ctx.beginPath(); ctx.arc(toX(x), toY(y), 3.5, 0, 2 * Math.PI); ctx.fill(); }
        ctx.font = `bold ${fontPx}px sans-serif`;
        ctx.textBaseline = "bottom";
        const ends = [[m.path[0], "start"], [m.path[m.path.length - 1], "end"]];
        for (const [[x, y], name] of ends) {
            ctx.lineWidth = 4;
            ctx.strokeStyle = "rgba(255,255,255,0.9)";
            ctx.strokeText(name, toX(x) + 6, toY(y) - 4);
            ctx.fillText(name, toX(x) + 6, toY(y) - 4);
        }
        ctx.restore();
        const [mx, my] = project(z, m.projection_mean, m.projection_components);
        drawCross(ctx, state.plot, toX(mx), toY(my));
        els.mapCanvas.dataset.marker = `${mx.toFixed(3)},${my.toFixed(3)}`;
    }

    function render(event) {
        const t0 = performance.now();
        const d = state.data, t = parseFloat(els.t.value);
        const scratch = state.scratch || (state.scratch = document.createElement("canvas"));
        const z = pathPoint(state.za, state.zb, t, d.method);
        drawPixels(els.latent, decode(state.model, z), d.width, d.height, scratch);
        if (d.map) drawMap(z);
        const blend = new Float32Array(state.xa.length);
        for (let i = 0; i < blend.length; i++) blend[i] = (1 - t) * state.xa[i] + t * state.xb[i];
        drawPixels(els.pixels, blend, d.width, d.height, scratch);
        els.label.textContent = `t = ${t.toFixed(2)}`;
        els.caption.textContent = `z(t) = ${d.method === "spherical" ? "slerp(z_a, z_b; t)" : "(1 − t) z_a + t z_b"} at t = ${t.toFixed(2)}`;
        els.caption.dataset.t = t.toFixed(2);
        // For the benchmark: the work of this move, and from the input event to the next frame.
        els.caption.dataset.ms = (performance.now() - t0).toFixed(2);
        els.caption.dataset.frameMs = "";
        if (event) requestAnimationFrame(() => { els.caption.dataset.frameMs = (performance.now() - event.timeStamp).toFixed(2); });
    }

    Object.assign(state, { render, layout });
    if (!state.bound) {
        state.bound = true;
        els.t.addEventListener("input", (event) => state.render(event));
        new ResizeObserver(() => { state.layout(); state.render(); }).observe(root);
    }
    layout();
    render();
}
