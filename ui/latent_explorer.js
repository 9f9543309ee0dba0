// The Latent space explorer: sliders for two latent coordinates, the decoder run in the
// browser, and a scatter of the encoded test set with the current point marked. Everything a
// slider move or a drag needs happens here, so the image follows the pointer with no server
// round trip; the chosen z is sent back to Python when a move ends.

const COLOURS = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd",
                 "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"];

function fromBase64(text, Type) {
    const bytes = Uint8Array.from(atob(text), (c) => c.charCodeAt(0));
    return new Type(bytes.buffer);
}

const ACTIVATIONS = {
    tanh: Math.tanh,
    relu: (v) => (v > 0 ? v : 0),
    softplus: (v) => (v > 20 ? v : Math.log1p(Math.exp(v))),
};

// The decoder of an MLP VAE of any depth: z -> act(W1 z + b1) -> ... -> act(W(n-1) h + b(n-1))
// -> Wn h + bn -> sigmoid (the mean image: of the Bernoulli logits, or of the Gaussian mean's half).
function decode(model, z) {
    const act = ACTIVATIONS[model.activation];
    const last = model.layers.length - 1;
    let x = z;
    model.layers.forEach(({ W, b, nIn, nOut }, l) => {
        const y = new Float32Array(nOut);
        for (let i = 0; i < nOut; i++) {
            let s = b[i];
            const row = i * nIn;
            for (let k = 0; k < nIn; k++) s += W[row + k] * x[k];
            y[i] = l < last ? act(s) : 1 / (1 + Math.exp(-s));
        }
        x = y;
    });
    return x;
}

function loadModel(d) {
    if (!(d.activation in ACTIVATIONS)) throw new Error(`unknown activation ${d.activation}`);
    const layers = d.layers.map((layer) => ({
        W: fromBase64(layer.weight, Float32Array), b: fromBase64(layer.bias, Float32Array),
        nIn: layer.in, nOut: layer.out,
    }));
    return { D: d.latent_dim, P: d.height * d.width, activation: d.activation, layers };
}

function loadPoints(d) {
    const xy = fromBase64(d.points, Float32Array);
    const labels = fromBase64(d.labels, Uint8Array);
    let lo = Infinity, hi = -Infinity;
    for (const v of xy) { lo = Math.min(lo, v); hi = Math.max(hi, v); }
    if (d.slider_axes) { lo = Math.min(lo, d.range[0]); hi = Math.max(hi, d.range[1]); }
    const pad = 0.04 * (hi - lo || 1);
    return { xy, labels, lo: lo - pad, hi: hi + pad };
}

function setupCanvas(canvas, size) {
    const ratio = window.devicePixelRatio || 1;
    canvas.width = size * ratio;
    canvas.height = size * ratio;
    canvas.style.width = size + "px";
    canvas.style.height = size + "px";
    const ctx = canvas.getContext("2d");
    ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
    return ctx;
}

export default function (component) {
    const { data, parentElement, setStateValue, setTriggerValue } = component;
    const root = parentElement.querySelector(".latent-explorer");
    const state = root.__latent || (root.__latent = {});
    const els = {
        a: root.querySelector("input[data-axis='0']"), b: root.querySelector("input[data-axis='1']"),
        aLabel: root.querySelector("[data-label='0']"), bLabel: root.querySelector("[data-label='1']"),
        image: root.querySelector("canvas.decoded"), scatter: root.querySelector("canvas.scatter"),
        caption: root.querySelector("[data-latent-caption]"), axes: root.querySelector(".axes"),
    };
    const SIZE = data.scatter_size;

    if (state.modelKey !== data.model_key) {
        state.model = loadModel(data);
        state.modelKey = data.model_key;
    }
    if (state.pointsKey !== data.points_key) {
        state.points = loadPoints(data);
        state.pointsKey = data.points_key;
        state.layer = null;
    }
    state.data = data;
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

    const toCanvas = (v, flip) => {
        const t = (v - state.points.lo) / (state.points.hi - state.points.lo);
        return flip ? SIZE * (1 - t) : SIZE * t;
    };
    const fromCanvas = (px, flip) => state.points.lo + (flip ? 1 - px / SIZE : px / SIZE) * (state.points.hi - state.points.lo);

    function drawLayer() {
        const layer = document.createElement("canvas");
        const ctx = setupCanvas(layer, SIZE);
        ctx.fillStyle = "#fff";
        ctx.fillRect(0, 0, SIZE, SIZE);
        ctx.strokeStyle = "#eee";
        ctx.lineWidth = 1;
        for (let g = Math.ceil(state.points.lo); g <= state.points.hi; g++) {
            ctx.strokeStyle = g === 0 ? "#bbb" : "#eee";
            ctx.beginPath(); ctx.moveTo(toCanvas(g), 0); ctx.lineTo(toCanvas(g), SIZE); ctx.stroke();
            ctx.beginPath(); ctx.moveTo(0, toCanvas(g, true)); ctx.lineTo(SIZE, toCanvas(g, true)); ctx.stroke();
        }
        const { xy, labels } = state.points;
        ctx.globalAlpha = 0.55;
        for (let i = 0; i < labels.length; i++) {
            ctx.fillStyle = COLOURS[labels[i] % 10];
            ctx.fillRect(toCanvas(xy[2 * i]) - 1.5, toCanvas(xy[2 * i + 1], true) - 1.5, 3, 3);
        }
        ctx.globalAlpha = 1;
        return layer;
    }

    function currentZ() {
        const z = Float32Array.from(data.base);
        z[data.dims[0]] = parseFloat(els.a.value);
        if (data.latent_dim > 1) z[data.dims[1]] = parseFloat(els.b.value);
        return z;
    }

    function render() {
        const z = currentZ();
        const pixels = decode(state.model, z);
        const small = state.small || (state.small = document.createElement("canvas"));
        small.width = data.width;
        small.height = data.height;
        const sctx = small.getContext("2d");
        const image = sctx.createImageData(data.width, data.height);
        for (let i = 0; i < pixels.length; i++) {
            const v = Math.round(255 * pixels[i]);
            image.data[4 * i] = image.data[4 * i + 1] = image.data[4 * i + 2] = v;
            image.data[4 * i + 3] = 255;
        }
        sctx.putImageData(image, 0, 0);
        const ictx = els.image.getContext("2d");
        ictx.imageSmoothingEnabled = false;
        ictx.drawImage(small, 0, 0, els.image.width, els.image.height);

        const ctx = state.ctx || (state.ctx = setupCanvas(els.scatter, SIZE));
        state.layer = state.layer || drawLayer();
        ctx.drawImage(state.layer, 0, 0, SIZE, SIZE);
        let mx = 0, my = 0;
        for (let k = 0; k < z.length; k++) {
            mx += (z[k] - mean[k]) * comps[2 * k];
            my += (z[k] - mean[k]) * comps[2 * k + 1];
        }
        const cx = toCanvas(mx), cy = toCanvas(my, true);
        ctx.strokeStyle = "#000";
        ctx.lineWidth = 3;
        ctx.beginPath();
        ctx.moveTo(cx - 8, cy - 8); ctx.lineTo(cx + 8, cy + 8);
        ctx.moveTo(cx + 8, cy - 8); ctx.lineTo(cx - 8, cy + 8);
        ctx.stroke();

        const a = parseFloat(els.a.value).toFixed(2), b = parseFloat(els.b.value).toFixed(2);
        els.aLabel.textContent = `${els.aLabel.dataset.name} = ${a}`;
        els.bLabel.textContent = `${els.bLabel.dataset.name} = ${b}`;
        els.caption.textContent = `decoder mean at z = (${a}, ${b})` + (data.latent_dim > 2 ? " with the other dimensions fixed" : "");
        els.caption.dataset.z = `${a},${b}`;
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
            const dx = toCanvas(xy[2 * i]) - px, dy = toCanvas(xy[2 * i + 1], true) - py;
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
        // With the sliders on the scatter's axes, a click or drag sets z right there.
        const s = state.data;
        const clamp = (v) => Math.min(s.range[1], Math.max(s.range[0], v));
        let x = fromCanvas(px), y = fromCanvas(py, true);
        if (snap) {
            const i = nearestPoint(px, py);
            if (i >= 0) { x = state.points.xy[2 * i]; y = state.points.xy[2 * i + 1]; }
        }
        els.a.value = clamp(x);
        els.b.value = clamp(y);
        render();
    }

    // Listeners are bound once; they call this render's functions, which see the latest data.
    Object.assign(state, { render, commit, moveTo, nearestPoint, pointer, setTriggerValue });
    if (!state.bound) {
        state.bound = true;
        for (const input of [els.a, els.b]) {
            input.addEventListener("input", () => { state.active = true; state.render(); });
            input.addEventListener("change", () => state.commit());
        }
        els.scatter.addEventListener("pointerdown", (event) => {
            const [px, py] = state.pointer(event);
            if (!state.data.slider_axes) {
                // Above 2-D the scatter is a projection: a click picks a test digit, whose code
                // Python makes the base point.
                const i = state.nearestPoint(px, py);
                if (i >= 0) state.setTriggerValue("clicked", i);
                return;
            }
            state.active = true;
            state.dragging = true;
            els.scatter.setPointerCapture(event.pointerId);
            state.moveTo(px, py, true);
        });
        els.scatter.addEventListener("pointermove", (event) => {
            if (state.dragging) state.moveTo(...state.pointer(event), false);
        });
        els.scatter.addEventListener("pointerup", () => {
            if (state.dragging) { state.dragging = false; state.commit(); }
        });
    }
    render();
}
