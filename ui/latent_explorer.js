// The Latent space explorer: sliders for two latent coordinates, the decoder run in the
// browser (browser_decoder.js and map_canvas.js, in front of this file), and a map of the encoded test set with
// the current point marked. Everything a slider move, a drag or a hover needs happens here, so
// the image follows the pointer with no server round trip; the chosen z is sent back to Python
// when a move ends. On request the map also shows a digit's posterior q(z|x) as its 1- and
// 2-standard-deviation ellipses and draws z = mu + sigma * eps inside them.

const THUMB = 84;  // the hover thumbnail's side: a 28x28 digit enlarged 3 times

function loadPoints(d) {
    const xy = fromBase64(d.points, Float32Array);
    const labels = fromBase64(d.labels, Uint8Array);
    const indices = fromBase64(d.point_indices, Int32Array);
    const extra = d.slider_axes ? [[d.range[0], d.range[1]]] : [];
    const v = squareView(xy, extra);
    return { xy, labels, indices, lo: v.x0, hi: v.x1 };
}

export default function (component) {
    const { parentElement, setStateValue, setTriggerValue } = component;
    const data = componentData(component);
    const root = parentElement.querySelector(".latent-explorer");
    const state = root.__latent || (root.__latent = {});
    const els = {
        controls: root.querySelector(".controls"), map: root.querySelector(".map"),
        a: root.querySelector("input[data-axis='0']"), b: root.querySelector("input[data-axis='1']"),
        aLabel: root.querySelector("[data-label='0']"), bLabel: root.querySelector("[data-label='1']"),
        image: root.querySelector("canvas.decoded"), scatter: root.querySelector("canvas.scatter"),
        caption: root.querySelector("[data-latent-caption]"), axes: root.querySelector(".axes"),
        thumb: root.querySelector(".thumb"), thumbCanvas: root.querySelector(".thumb canvas"),
        thumbCaption: root.querySelector(".thumb span"),
    };

    if (state.modelKey !== data.model_key) {
        state.model = loadModel(data);
        state.modelKey = data.model_key;
    }
    if (state.pointsKey !== data.points_key) {
        state.points = loadPoints(data);
        state.pointsKey = data.points_key;
        state.layer = null;
    }
    const viewKey = JSON.stringify(data.view);
    if (state.viewKey !== viewKey) { state.viewKey = viewKey; state.layer = null; }
    state.data = data;
    if (root.style.fontSize !== data.text_px + "px") {
        root.style.fontSize = data.text_px + "px";
        state.layer = null;
    }
    const mean = data.projection_mean, comps = data.projection_components;

    for (const [input, label, axis] of [[els.a, els.aLabel, 0], [els.b, els.bLabel, 1]]) {
        input.min = data.range[0];
        input.max = data.range[1];
        input.step = data.step;
        input.disabled = axis === 1 && data.latent_dim === 1;
        label.dataset.name = data.axis_names[axis];
    }
    // Take z from Python only when Python chose it (first render, a click on a projected map):
    // an echo of a value this component sent may arrive after the user has moved on.
    const zKey = `${data.z[0]},${data.z[1]}`;
    state.sent = state.sent || new Set();
    if (!state.active && !state.sent.has(zKey)) {
        els.a.value = data.z[0];
        els.b.value = data.z[1];
    }
    els.axes.textContent = `horizontal: ${data.scatter_titles[0]}, vertical: ${data.scatter_titles[1]}`;

    // The image and the map share the width: side by side down to a 480 px column (a
    // projector's 564 px main column included), stacked below that.
    function layout() {
        const width = Math.floor(root.getBoundingClientRect().width) || 560;
        const gap = width < 760 ? 16 : 32;
        let controls = Math.round(Math.min(280, Math.max(160, 0.36 * width)));
        let size = Math.min(state.data.scatter_size, width - controls - gap);
        const stacked = size < 260;
        if (stacked) { controls = Math.min(280, width); size = Math.min(state.data.scatter_size, width); }
        root.classList.toggle("stacked", stacked);
        root.style.gap = gap + "px";
        const key = `${controls}:${size}`;
        if (state.layoutKey === key) return;
        state.layoutKey = key;
        els.controls.style.width = controls + "px";
        els.map.style.width = size + "px";
        els.image.style.width = els.image.style.height = controls + "px";
        state.plot = size - MARGIN.left - MARGIN.right;          // the plot area is square
        state.width = size;
        state.height = state.plot + MARGIN.top + MARGIN.bottom;
        state.ctx = setupCanvas(els.scatter, state.width, state.height);
        state.layer = null;
    }

    function view() {
        const v = state.data.view, p = state.points;
        return v ? { x0: v[0], x1: v[1], y0: v[2], y1: v[3] } : { x0: p.lo, x1: p.hi, y0: p.lo, y1: p.hi };
    }
    const toX = (v) => mapScale(state.plot, view()).toX(v);
    const toY = (v) => mapScale(state.plot, view()).toY(v);
    const fromX = (px) => mapScale(state.plot, view()).fromX(px);
    const fromY = (py) => mapScale(state.plot, view()).fromY(py);

    function fontPx() {
        return Math.max(12, Math.round(0.85 * (state.data.text_px || 16)));
    }

    function drawLayer() {
        return drawMapLayer(state.width, state.height, state.plot, view(), state.points.xy, state.points.labels,
                            fontPx());
    }

    function currentZ() {
        const z = Float32Array.from(state.data.base);
        z[state.data.dims[0]] = parseFloat(els.a.value);
        if (state.data.latent_dim > 1) z[state.data.dims[1]] = parseFloat(els.b.value);
        return z;
    }

    // The posterior's ellipses (1 and 2 sd), its mean and the numbered draws, over the map.
    function drawPosterior(ctx) {
        const post = state.data.posterior;
        if (!post) { delete els.scatter.dataset.overlay; return; }
        const w = view(), sx = state.plot / (w.x1 - w.x0), sy = state.plot / (w.y1 - w.y0);
        ctx.save();
        ctx.beginPath();
        ctx.rect(MARGIN.left, MARGIN.top, state.plot, state.plot);
        ctx.clip();
        post.ellipses.forEach(({ centre, radii, angle, k }) => {
            ctx.beginPath();
            // The y axis points down on the canvas, so the angle changes sign.
            ctx.ellipse(toX(centre[0]), toY(centre[1]), Math.max(radii[0] * sx, 1), Math.max(radii[1] * sy, 1),
                        -angle, 0, 2 * Math.PI);
            ctx.setLineDash(k === 1 ? [] : [6, 4]);
            ctx.lineWidth = 4;
            ctx.strokeStyle = "rgba(255,255,255,0.85)";
            ctx.stroke();
            ctx.lineWidth = 2;
            ctx.strokeStyle = "#111";
            ctx.stroke();
        });
        ctx.setLineDash([]);
        const [mx, my] = post.mean;
        ctx.fillStyle = "#111";
        ctx.beginPath(); ctx.arc(toX(mx), toY(my), 3, 0, 2 * Math.PI); ctx.fill();
        ctx.font = `bold ${fontPx()}px sans-serif`;
        ctx.textAlign = "center"; ctx.textBaseline = "middle";
        els.scatter.dataset.overlay = JSON.stringify({
            mean: [toX(mx), toY(my)], samples: post.samples.map(([x, y]) => [toX(x), toY(y)]),
            radii: post.ellipses.map(({ radii }) => [radii[0] * sx, radii[1] * sy]),
        });
        post.samples.forEach(([x, y], i) => {
            const cx = toX(x), cy = toY(y);
            ctx.beginPath(); ctx.arc(cx, cy, 6, 0, 2 * Math.PI);
            ctx.fillStyle = "#ffd400"; ctx.fill();
            ctx.lineWidth = 1.5; ctx.strokeStyle = "#111"; ctx.stroke();
            ctx.fillStyle = "#111";
            ctx.fillText(String(i + 1), cx + 12, cy - 10);
        });
        ctx.restore();
    }

    function render() {
        const t0 = performance.now();
        const z = currentZ();
        const d = state.data;
        const small = state.small || (state.small = document.createElement("canvas"));
        drawPixels(els.image, decode(state.model, z), d.width, d.height, small);

        const ctx = state.ctx;
        state.layer = state.layer || drawLayer();
        ctx.drawImage(state.layer, 0, 0, state.width, state.height);
        drawPosterior(ctx);
        if (d.linear) {
            const [mx, my] = project(z, mean, comps);
            // clipped: a zoomed map may leave z outside, and the cross stays off the tick numbers
            drawCross(ctx, state.plot, toX(mx), toY(my));
        }

        const a = parseFloat(els.a.value).toFixed(2), b = parseFloat(els.b.value).toFixed(2);
        els.aLabel.textContent = `${els.aLabel.dataset.name} = ${a}`;
        els.bLabel.textContent = `${els.bLabel.dataset.name} = ${b}`;
        els.caption.textContent = `decoder mean at z = (${a}, ${b})` + (d.latent_dim > 2 ? " with the other dimensions fixed" : "");
        els.caption.dataset.z = `${a},${b}`;
        els.caption.dataset.ms = (performance.now() - t0).toFixed(2);
    }

    function commit() {
        // Tell Python where z is once the user pauses: every report reruns the page, which
        // would compete with the next key press for the CPU.
        clearTimeout(state.commitTimer);
        state.commitTimer = setTimeout(() => {
            state.active = false;
            const z = [parseFloat(els.a.value), parseFloat(els.b.value)];
            state.sent.add(`${z[0]},${z[1]}`);
            setStateValue("z", z);
        }, 400);
    }

    function nearestPoint(px, py) {
        const { xy, labels } = state.points;
        let best = -1, bestDistance = 64;  // within 8 px
        for (let i = 0; i < labels.length; i++) {
            const dx = toX(xy[2 * i]) - px, dy = toY(xy[2 * i + 1]) - py;
            const distance = dx * dx + dy * dy;
            if (distance < bestDistance) { best = i; bestDistance = distance; }
        }
        return best;
    }

    function pointer(event) {
        const rect = els.scatter.getBoundingClientRect();
        return [event.clientX - rect.left, event.clientY - rect.top];
    }

    function moveTo(px, py, snap) {
        // With the sliders on the map's axes, a click or drag sets z right there.
        const s = state.data;
        const clamp = (v) => Math.min(s.range[1], Math.max(s.range[0], v));
        let x = fromX(px), y = fromY(py);
        if (snap) {
            const i = nearestPoint(px, py);
            if (i >= 0) { x = state.points.xy[2 * i]; y = state.points.xy[2 * i + 1]; }
        }
        els.a.value = clamp(x);
        els.b.value = clamp(y);
        render();
    }

    // The test digit under the pointer, as a thumbnail beside it: from the sprite sheet of the
    // test set, which the page's thumbnail_sheet element has put in the page-wide registry
    // (none until it has loaded), so no server round trip.
    function hover(event) {
        const t0 = performance.now();
        const [px, py] = pointer(event);
        const sheet = globalThis.vaeThumbnailSheets?.get(state.data.thumbnails_key);
        const i = sheet ? nearestPoint(px, py) : -1;
        if (i < 0) { els.thumb.hidden = true; return; }
        const index = state.points.indices[i], columns = sheet.columns, side = sheet.side;
        const ctx = els.thumbCanvas.getContext("2d");
        ctx.imageSmoothingEnabled = false;
        ctx.drawImage(sheet.image, (index % columns) * side, Math.floor(index / columns) * side, side, side,
                      0, 0, els.thumbCanvas.width, els.thumbCanvas.height);
        els.thumbCaption.textContent = `test #${index}: a ${state.points.labels[i]}`;
        const mapRect = els.map.getBoundingClientRect(), canvasRect = els.scatter.getBoundingClientRect();
        const left = canvasRect.left - mapRect.left + px, top = canvasRect.top - mapRect.top + py;
        els.thumb.style.left = (left + 14 + THUMB + 8 > mapRect.width ? left - THUMB - 22 : left + 14) + "px";
        els.thumb.style.top = Math.max(0, top - THUMB - 24) + "px";
        els.thumb.hidden = false;
        els.thumb.dataset.index = index;
        // For the benchmark: the work of this move, and from the pointer event to the next frame.
        els.thumb.dataset.ms = (performance.now() - t0).toFixed(2);
        els.thumb.dataset.frameMs = "";
        requestAnimationFrame(() => { els.thumb.dataset.frameMs = (performance.now() - event.timeStamp).toFixed(2); });
    }

    // Listeners are bound once; they call this render's functions, which see the latest data.
    Object.assign(state, { render, commit, moveTo, nearestPoint, pointer, hover, layout, setTriggerValue });
    if (!state.bound) {
        state.bound = true;
        for (const input of [els.a, els.b]) {
            input.addEventListener("input", () => { state.active = true; state.render(); });
            input.addEventListener("change", () => state.commit());
        }
        els.scatter.addEventListener("pointerdown", (event) => {
            const [px, py] = state.pointer(event);
            if (!state.data.slider_axes) {
                // Above 2-D the map is a projection: a click picks a test digit, whose code
                // Python makes the base point.
                const i = state.nearestPoint(px, py);
                if (i >= 0) state.setTriggerValue("clicked", state.points.indices[i]);
                return;
            }
            state.active = true;
            state.dragging = true;
            els.thumb.hidden = true;
            els.scatter.setPointerCapture(event.pointerId);
            state.moveTo(px, py, true);
        });
        els.scatter.addEventListener("pointermove", (event) => {
            if (state.dragging) state.moveTo(...state.pointer(event), false);
            else state.hover(event);
        });
        els.scatter.addEventListener("pointerup", () => {
            if (state.dragging) { state.dragging = false; state.commit(); }
        });
        els.scatter.addEventListener("pointerleave", () => { els.thumb.hidden = true; });
        new ResizeObserver(() => { state.layout(); state.render(); }).observe(root);
    }
    layout();
    render();
}
