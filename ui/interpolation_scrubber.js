// The Interpolate scrubber: a slider t in [0, 1] decodes z(t) between two codes in the browser
// (browser_decoder.js, in front of this file) beside the pixel cross-fade at the same t, so the
// image follows the pointer with no server round trip. z(t) is the page's path: linear,
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
    const { data, parentElement } = component;
    const root = parentElement.querySelector(".scrubber");
    const state = root.__scrubber || (root.__scrubber = {});
    const els = {
        t: root.querySelector("input[data-t]"), label: root.querySelector("[data-t-label]"),
        latent: root.querySelector("canvas.latent"), pixels: root.querySelector("canvas.pixels"),
        caption: root.querySelector("[data-scrub-caption]"),
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

    function render(event) {
        const t0 = performance.now();
        const d = state.data, t = parseFloat(els.t.value);
        const scratch = state.scratch || (state.scratch = document.createElement("canvas"));
        drawPixels(els.latent, decode(state.model, pathPoint(state.za, state.zb, t, d.method)), d.width, d.height, scratch);
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

    state.render = render;
    if (!state.bound) {
        state.bound = true;
        els.t.addEventListener("input", (event) => state.render(event));
    }
    render();
}
