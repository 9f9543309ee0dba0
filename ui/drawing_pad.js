// The drawing pad: draw a digit with a mouse, a finger or a pen (pointer events), with Undo and
// Clear. When a stroke ends, the drawing goes to Python as a PNG, which prepares it exactly as
// an uploaded image. Strokes are kept as points, so Undo redraws the others.

export default function (component) {
    const { data, parentElement, setStateValue } = component;
    const root = parentElement.querySelector(".drawing-pad");
    const state = root.__pad || (root.__pad = { strokes: [], current: null });
    const canvas = root.querySelector("canvas");
    const SIZE = data.size;
    const ratio = window.devicePixelRatio || 1;
    if (canvas.width !== Math.round(SIZE * ratio)) {
        canvas.width = canvas.height = Math.round(SIZE * ratio);  // shown at most SIZE px wide (CSS)
    }
    const ctx = canvas.getContext("2d");
    state.data = data;

    function redraw() {
        ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
        ctx.fillStyle = "#ffffff";
        ctx.fillRect(0, 0, SIZE, SIZE);
        ctx.strokeStyle = "#000000";
        ctx.fillStyle = "#000000";
        ctx.lineWidth = state.data.line_width;
        ctx.lineCap = "round";
        ctx.lineJoin = "round";
        for (const stroke of state.strokes.concat(state.current ? [state.current] : [])) {
            if (stroke.length === 1) {  // a tap is a dot
                ctx.beginPath();
                ctx.arc(stroke[0][0], stroke[0][1], state.data.line_width / 2, 0, 2 * Math.PI);
                ctx.fill();
                continue;
            }
            ctx.beginPath();
            ctx.moveTo(stroke[0][0], stroke[0][1]);
            for (const [x, y] of stroke.slice(1)) ctx.lineTo(x, y);
            ctx.stroke();
        }
        root.querySelector("[data-undo]").disabled = state.strokes.length === 0;
        root.querySelector("[data-clear]").disabled = state.strokes.length === 0;
        root.querySelector("[data-hint]").style.visibility = state.strokes.length || state.current ? "hidden" : "visible";
    }

    function send() {
        // An empty pad sends an empty drawing; Python then falls back to its default digit.
        const png = state.strokes.length ? canvas.toDataURL("image/png") : "";
        setStateValue("drawing", { png, strokes: state.strokes.length, serial: (state.serial = (state.serial || 0) + 1) });
    }

    function point(event) {
        const rect = canvas.getBoundingClientRect();
        return [(event.clientX - rect.left) * SIZE / rect.width, (event.clientY - rect.top) * SIZE / rect.height];
    }

    Object.assign(state, { redraw, send, point });
    if (!state.bound) {
        state.bound = true;
        canvas.addEventListener("pointerdown", (event) => {
            event.preventDefault();
            canvas.setPointerCapture(event.pointerId);
            state.current = [state.point(event)];
            state.redraw();
        });
        canvas.addEventListener("pointermove", (event) => {
            if (!state.current) return;
            for (const e of event.getCoalescedEvents ? event.getCoalescedEvents() : [event]) {
                state.current.push(state.point(e));
            }
            state.redraw();
        });
        const end = () => {
            if (!state.current) return;
            state.strokes.push(state.current);
            state.current = null;
            state.redraw();
            state.send();
        };
        canvas.addEventListener("pointerup", end);
        canvas.addEventListener("pointercancel", end);
        root.querySelector("[data-undo]").addEventListener("click", () => {
            state.strokes.pop();
            state.redraw();
            state.send();
        });
        root.querySelector("[data-clear]").addEventListener("click", () => {
            state.strokes = [];
            state.redraw();
            state.send();
        });
    }
    redraw();
}
