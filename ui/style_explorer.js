// The Generate tab of the Semi-supervised page: M2's decoder p(x|y, z) run in the browser
// (browser_decoder.js, in front of this file, gives componentData, fromBase64, ACTIVATIONS, sigmoid,
// runLayers and drawPixels).
// The generator is a list of stages (vae_core.m2.explore.generator_stages): the first takes
// [z, one-hot y]; a stage with a scatter places its input on some units of a zero vector first
// (M1+M2: M2 draws M1's code, M1's decoder draws the image); each stage ends with a sigmoid,
// a clamp to [0, 1] or nothing.

const OUTPUTS = {
    sigmoid,
    clamp: (v) => Math.min(1, Math.max(0, v)),
    none: (v) => v,
};

function loadGenerator(d) {
    return d.stages.map((stage) => {
        if (!(stage.activation in ACTIVATIONS)) throw new Error(`unknown activation ${stage.activation}`);
        if (!(stage.output in OUTPUTS)) throw new Error(`unknown output ${stage.output}`);
        return {
            act: ACTIVATIONS[stage.activation], out: OUTPUTS[stage.output], scatter: stage.scatter,
            layers: stage.layers.map((l) => ({
                W: fromBase64(l.weight, Float32Array), b: fromBase64(l.bias, Float32Array), nIn: l.in, nOut: l.out,
            })),
        };
    });
}

function generate(stages, z, label, numClasses) {
    let x = new Float32Array(z.length + numClasses);
    x.set(z);
    x[z.length + label] = 1;
    for (const stage of stages) {
        if (stage.scatter) {
            const placed = new Float32Array(stage.scatter.size);
            stage.scatter.units.forEach((unit, i) => { placed[unit] = x[i]; });
            x = placed;
        }
        x = runLayers(stage.layers, stage.act, stage.out, x);
    }
    return x;
}

export default function (component) {
    const { parentElement } = component;
    const data = componentData(component);
    const root = parentElement.querySelector(".style-explorer");
    const state = root.__style || (root.__style = {});
    const els = {
        classes: root.querySelector("[data-classes]"), sliders: root.querySelector("[data-sliders]"),
        one: root.querySelector("canvas.one"), oneCaption: root.querySelector("[data-one-caption]"),
        strip: root.querySelector("canvas.strip"), caption: root.querySelector("[data-style-caption]"),
    };
    if (state.modelKey !== data.model_key) {
        state.stages = loadGenerator(data);
        state.modelKey = data.model_key;
    }
    state.data = data;
    root.style.fontSize = data.text_px + "px";
    const K = data.num_classes, H = data.height, W = data.width;

    if (state.resetKey !== data.reset_key) {  // a new model, seed or choice of dimensions
        state.resetKey = data.reset_key;
        state.z = Float32Array.from(data.base);
        if (state.label === undefined || state.label >= K) state.label = data.label;
        els.classes.replaceChildren(Object.assign(document.createElement("b"), { textContent: "Class y:" }));
        for (let k = 0; k < K; k++) {
            const button = document.createElement("button");
            button.type = "button";
            button.textContent = String(k);
            button.setAttribute("role", "radio");
            button.dataset.label = String(k);
            button.addEventListener("click", (event) => choose(k, event));
            els.classes.append(button);
        }
        els.sliders.replaceChildren();
        data.dims.forEach((dim) => {
            const label = document.createElement("label");
            const name = document.createElement("span");
            const input = document.createElement("input");
            Object.assign(input, { type: "range", min: data.range[0], max: data.range[1], step: data.step });
            input.value = Math.min(data.range[1], Math.max(data.range[0], state.z[dim])).toFixed(1);
            input.dataset.dim = String(dim);
            input.setAttribute("aria-label", `style dimension z${dim + 1}`);
            input.addEventListener("input", (event) => {
                state.z[dim] = parseFloat(input.value);
                render(event);
            });
            label.append(name, input);
            els.sliders.append(label);
        });
        if (!data.dims.length) els.sliders.append(Object.assign(document.createElement("span"), {
            textContent: "Choose one or two dimensions above to move the style." }));
        els.strip.width = K * W * 2;
        els.strip.height = H * 2;
    }

    function choose(k, event) {
        state.label = k;
        render(event);
    }
    if (!state.stripBound) {
        state.stripBound = true;
        els.strip.addEventListener("click", (event) => {
            const box = els.strip.getBoundingClientRect();
            const k = Math.floor(((event.clientX - box.left) / box.width) * state.data.num_classes);
            if (k >= 0 && k < state.data.num_classes) choose(k, event);
        });
    }

    function render(event) {
        const t0 = performance.now();
        const d = state.data, z = state.z;
        const scratch = state.scratch || (state.scratch = document.createElement("canvas"));
        const every = new Float32Array(K * H * W);
        for (let k = 0; k < K; k++) {
            const image = generate(state.stages, z, k, K);
            for (let r = 0; r < H; r++) every.set(image.subarray(r * W, (r + 1) * W), r * K * W + k * W);
            if (k === state.label) drawPixels(els.one, image, W, H, scratch);
        }
        drawPixels(els.strip, every, K * W, H, scratch);
        for (const button of els.classes.querySelectorAll("button"))
            button.setAttribute("aria-checked", String(Number(button.dataset.label) === state.label));
        for (const input of els.sliders.querySelectorAll("input")) {
            const dim = Number(input.dataset.dim);
            input.previousElementSibling.textContent = `z${dim + 1} = ${z[dim].toFixed(1)}`;
        }
        els.oneCaption.textContent = `a ${state.label} in this style`;
        const shown = Array.from(z, (v) => v.toFixed(1));
        els.caption.textContent = `style z = (${shown.length > 8 ? shown.slice(0, 8).join(", ") + ", ..." : shown.join(", ")})`;
        // For tests and the benchmark: what is drawn, the work of this move and from the input to the next frame.
        els.caption.dataset.z = Array.from(z).join(",");
        els.caption.dataset.label = String(state.label);
        els.caption.dataset.ms = (performance.now() - t0).toFixed(2);
        els.caption.dataset.frameMs = "";
        if (event && event.timeStamp) requestAnimationFrame(() => { els.caption.dataset.frameMs = (performance.now() - event.timeStamp).toFixed(2); });
    }
    render();
}
