"""The app's video memory settings (rmbg.webapp.video_room), declared beside the others
(rmbg.settings_declared adds them to SETTINGS; a module of their own keeps that one short). Stdlib only."""

from __future__ import annotations

from .settings_declared import Setting

VIDEO_ROOM: tuple[Setting, ...] = (
    Setting(
        "RMBG_VIDEO_MEMORY_MB",
        "int (MiB)",
        "768",
        "Memory the app's video doors may hold at once (clips being cut or re-encoded, estimated from their "
        "frame size); a clip that would pass it waits its turn before it decodes.",
        "rmbg.webapp.video_room",
    ),
    Setting(
        "RMBG_VIDEO_WAIT_S",
        "float (s)",
        "300",
        "Longest a clip waits for room under RMBG_VIDEO_MEMORY_MB before it is refused (HTTP 503).",
        "rmbg.webapp.video_room",
    ),
)
