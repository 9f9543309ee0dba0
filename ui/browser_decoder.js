// The MLP decoder of a VAE, run in the browser: the components that decode on every pointer
// move (the Latent space explorer, the Interpolate scrubber) put this file in front of their own.
// Python sends the layers once per page run (ui/latent_explorer.py `decoder_payload`).

// A component's data: JSON in bytes, as ui/latent_explorer.py `json_data` sends it.
function componentData(component) {
    return JSON.parse(new TextDecoder().decode(component.data));
}

// Base64 to a typed array: the browser's own decoder where it has one, else a plain loop
// (Uint8Array.from with a mapping function took 200 ms for a 2-D model's 1.6 MB of weights).
function fromBase64(text, Type) {
    let bytes;
    if (Uint8Array.fromBase64) {
        bytes = Uint8Array.fromBase64(text);
    } else {
        const binary = atob(text);
        bytes = new Uint8Array(binary.length);
        for (let i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i);
    }
    return new Type(bytes.buffer, bytes.byteOffset, bytes.byteLength / Type.BYTES_PER_ELEMENT);
}

const ACTIVATIONS = {
    tanh: Math.tanh,
    relu: (v) => (v > 0 ? v : 0),
    softplus: (v) => (v > 20 ? v : Math.log1p(Math.exp(v))),
};

const sigmoid = (v) => 1 / (1 + Math.exp(-v));

// Affine layers {W (row-major, nOut x nIn), b, nIn, nOut} on x: `act` between them, `out` after the last.
function runLayers(layers, act, out, x) {
    const last = layers.length - 1;
    layers.forEach(({ W, b, nIn, nOut }, l) => {
        const y = new Float32Array(nOut);
        for (let i = 0; i < nOut; i++) {
            let s = b[i];
            const row = i * nIn;
            for (let k = 0; k < nIn; k++) s += W[row + k] * x[k];
            y[i] = l < last ? act(s) : out(s);
        }
        x = y;
    });
    return x;
}

// The decoder of an MLP VAE of any depth: z -> act(W1 z + b1) -> ... -> act(W(n-1) h + b(n-1))
// -> Wn h + bn -> sigmoid (the mean image: of the Bernoulli logits, or of the Gaussian mean's half).
function decode(model, z) {
    return runLayers(model.layers, ACTIVATIONS[model.activation], sigmoid, z);
}

function loadModel(d) {
    if (!(d.activation in ACTIVATIONS)) throw new Error(`unknown activation ${d.activation}`);
    const layers = d.layers.map((layer) => ({
        W: fromBase64(layer.weight, Float32Array), b: fromBase64(layer.bias, Float32Array),
        nIn: layer.in, nOut: layer.out,
    }));
    return { D: d.latent_dim, P: d.height * d.width, activation: d.activation, layers };
}

// Draw grey values in [0, 1] (height x width, row-major) onto a canvas, enlarged with sharp pixels.
function drawPixels(canvas, pixels, width, height, scratch) {
    scratch.width = width;
    scratch.height = height;
    const sctx = scratch.getContext("2d");
    const image = sctx.createImageData(width, height);
    for (let i = 0; i < pixels.length; i++) {
        const v = Math.round(255 * Math.min(1, Math.max(0, pixels[i])));
        image.data[4 * i] = image.data[4 * i + 1] = image.data[4 * i + 2] = v;
        image.data[4 * i + 3] = 255;
    }
    sctx.putImageData(image, 0, 0);
    const ctx = canvas.getContext("2d");
    ctx.imageSmoothingEnabled = false;
    ctx.drawImage(scratch, 0, 0, canvas.width, canvas.height);
}
