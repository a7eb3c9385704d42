"""The browser side of the Video tab: the checkerboard under transparent
videos, and the Compare view's two videos kept in sync.

PAIR_JS runs once when the page loads (launch(js=...)): it links the two
<video> elements of the Compare view as soon as they exist (and again when
gradio replaces them): playing, pausing or seeking one does the same to the
other, and while they play the right one follows the left within half a
frame. STEP_JS is the frame slider's: both videos paused on frame i (the
middle of its time, from the clip's duration and frame count). PLAY_JS and
PAUSE_JS are the Play both and Pause buttons'.
"""

from __future__ import annotations

CHECKERBOARD = "repeating-conic-gradient(#d4d4d8 0 25%, #ffffff 0 50%) 0 0 / 20px 20px"
VIDEO_CSS = f"""
#video-result video, #video-cmp-a video, #video-cmp-b video {{background: {CHECKERBOARD} !important;}}
#video-result, #video-cmp-a, #video-cmp-b {{min-width: 0 !important;}}
#video-pair {{flex-wrap: nowrap !important; gap: 6px;}}
#video-pair > * {{min-width: 0 !important; flex: 1 1 0 !important;}}
"""

_PAIR = "const pair = () => [...['video-cmp-a', 'video-cmp-b'].map(id => document.querySelector(`#${id} video`))];"
_FRAMES = "const frames = () => Number(document.querySelector('#video-frame input[type=range]')?.max ?? 0) + 1;"

PAIR_JS = f"""
() => {{
    if (window.rmbgVideoPair) return;
    {_PAIR}
    {_FRAMES}
    const link = () => {{
        const [a, b] = pair();
        if (!a || !b || (a.rmbgPeer === b && b.rmbgPeer === a)) return;
        a.rmbgPeer = b; b.rmbgPeer = a;
        for (const [one, other] of [[a, b], [b, a]]) {{
            one.addEventListener('play', () => {{
                if (other.paused) {{ other.currentTime = one.currentTime; other.play().catch(() => {{}}); }}
            }});
            one.addEventListener('pause', () => {{
                if (!other.paused) other.pause();
                if (Math.abs(other.currentTime - one.currentTime) > 0.001) other.currentTime = one.currentTime;
            }});
            one.addEventListener('seeked', () => {{
                if (one.paused && Math.abs(other.currentTime - one.currentTime) > 0.001) {{
                    other.currentTime = one.currentTime;
                }}
            }});
        }}
    }};
    const follow = () => {{
        const [a, b] = pair();
        if (a && b && !a.paused && !b.paused && a.duration > 0) {{
            const step = a.duration / Math.max(frames(), 1);
            if (Math.abs(b.currentTime - a.currentTime) > step / 2) b.currentTime = a.currentTime;
        }}
        requestAnimationFrame(follow);
    }};
    window.rmbgVideoPair = setInterval(link, 250);
    requestAnimationFrame(follow);
}}
"""

STEP_JS = f"""
(i) => {{
    {_PAIR}
    {_FRAMES}
    const [a, b] = pair();
    if (!a || !b || !(a.duration > 0)) return;
    const t = (Number(i) + 0.5) * a.duration / Math.max(frames(), 1);
    for (const v of [a, b]) {{ v.pause(); v.currentTime = t; }}
}}
"""

PLAY_JS = f"""
() => {{
    {_PAIR}
    const [a, b] = pair();
    if (!a || !b) return;
    if (a.ended) a.currentTime = 0;
    b.currentTime = a.currentTime;
    a.play().catch(() => {{}});
    b.play().catch(() => {{}});
}}
"""

PAUSE_JS = f"""
() => {{
    {_PAIR}
    const [a, b] = pair();
    if (!a || !b) return;
    a.pause(); b.pause();
    b.currentTime = a.currentTime;
}}
"""
