"""Point at the render and ask the scene: the "Click in render" tools of the "Semantic Flow" panel.

:class:`PointerTools` is a nerfstudio :class:`ViewerControl` held by the model (nerfstudio's viewer finds it
like the panel and hands it the viewer). The panel's "Click in render" dropdown chooses what the viewer's
pointer events do (nerfstudio's ``register_pointer_cb``; viser allows one pointer callback at a time):

- inspect point + path: the ray under the cursor is cast at the time slider's time
  (:mod:`~semflow_ns.model_components.inspect`); the panel shows class and probability, instance, depth,
  3D position and the dynamic share, or says that the ray hits no surface; the point's path through the
  whole video (:mod:`~semflow_ns.model_components.trajectories`) is drawn in the scene with a marker that
  follows the time slider (:mod:`~semflow_ns.viewer.path_layer`). Paths accumulate until "Clear paths";
- toggle class / toggle instance: the class (instance) under the cursor has its tick box flipped, the same
  edit as a click on the box;
- toggle instances in box: dragging a box flips every instance seen inside it.

Every query runs under the viewer's training lock, in evaluation mode and without gradients, and restores
training mode (:func:`~semflow_ns.model_components.inspect.querying`), so training is unaffected. The methods
:meth:`PointerTools.click` and :meth:`PointerTools.box` are the pointer callbacks; tests call them directly.
"""

from __future__ import annotations

import time as clock
import warnings
from typing import TYPE_CHECKING, Optional

import torch
from nerfstudio.viewer.viewer_elements import ViewerClick, ViewerControl, ViewerRectSelect

from semflow_ns.model_components.inspect import PointInspection, inspect_rays, querying
from semflow_ns.model_components.trajectories import Paths, integrate_paths
from semflow_ns.viewer.panel import INSPECT, ORBIT, PICK_BOX, PICK_CLASS, PICK_INSTANCE, SemanticFlowPanel

if TYPE_CHECKING:
    from nerfstudio.viewer.viewer import Viewer

    from semflow_ns.models.semflow_model import SemanticFlowModel
    from semflow_ns.viewer.path_layer import PathLayer

BOX_HEIGHT = 96
"""Height (pixels) of the view whose rays sample a dragged box."""
BOX_MAX_SIDE = 40
"""At most this many rays per side of a box."""
BOX_MIN_HITS = 2
"""Rays of the box an instance must cover to be picked."""


class PointerTools(ViewerControl):
    """See the module docstring.

    Args:
        model: the model queried.
        panel: the model's panel (its "Click in render" dropdown, readout and tick boxes).
    """

    def __init__(self, model: SemanticFlowModel, panel: SemanticFlowPanel) -> None:
        self._model = model
        self.panel = panel
        self.viewer: Optional[Viewer] = None
        self.layer: Optional[PathLayer] = None
        self.inspections: list[PointInspection] = []
        """Every inspected point, oldest first (with their paths in ``paths``)."""
        self.paths: list[Optional[Paths]] = []
        self.last_click: Optional[ViewerClick] = None
        """The last click event (ray in world units, screen position in [0, 1])."""
        self.latency = 0.0
        """Seconds the last click took to answer (from the event to the panel, including waiting for the lock)."""
        self.mode = ORBIT
        panel.on_pointer_mode = self.set_mode
        panel.on_clear = self.clear

    def _setup(self, viewer: Viewer) -> None:
        super()._setup(viewer)
        from semflow_ns.viewer.path_layer import PathLayer, scene_diagonal  # the viewer module: only with a viewer

        self.layer = PathLayer(viewer.viser_server, scene_diagonal(self._model.scene_box.aabb))
        slider = getattr(viewer.control_panel, "_time", None)  # the time slider (nerfstudio keeps it private)
        if slider is not None and slider.gui_handle is not None:
            slider.gui_handle.on_update(lambda _: self.follow_time())

    # ------------------------------------------------------------------------------------------
    # state

    def current_time(self) -> float:
        """The time the viewer renders at (its time slider), else the model's default render time."""
        if self.viewer is not None and self.viewer.include_time:
            return float(self.viewer.control_panel.time)
        return float(self._model.render_times.default_time)

    def _lock(self):
        return None if self.viewer is None else self.viewer.train_lock

    def set_mode(self, mode: str) -> None:
        """Routes the viewer's pointer events for ``mode`` (one of the panel's "Click in render" options)."""
        if self.viewer is not None:
            if mode == ORBIT:
                with warnings.catch_warnings():  # viser warns when no callback was registered
                    warnings.simplefilter("ignore")
                    self.unregister_pointer_cb()
            elif mode == PICK_BOX:
                self.register_pointer_cb("rect-select", self.box)
            else:
                self.register_pointer_cb("click", self.click)
        hints = {
            ORBIT: "Dragging orbits the camera (in the other modes it does not).",
            INSPECT: "Click a point of the render to inspect it and draw its path.",
            PICK_CLASS: "Click the render to toggle the class under the cursor.",
            PICK_INSTANCE: "Click the render to toggle the instance under the cursor.",
            PICK_BOX: "Drag a box over the render to toggle every instance inside it.",
        }
        self.panel.show(hints.get(mode, ""))
        self.mode = mode  # last: the events are routed

    def follow_time(self) -> None:
        """Moves the path markers to the time slider's time."""
        if self.layer is not None:
            self.layer.set_time(self.current_time())

    def clear(self) -> None:
        """Forgets every inspected point and removes the drawn paths."""
        self.inspections, self.paths = [], []
        if self.layer is not None:
            self.layer.clear()
        self.panel.show("Paths cleared.")

    def _interrupt_render(self) -> None:
        """Stops the viewer's full-resolution render, if one is running (it holds the training lock for the whole
        image: tens of seconds on a CPU), and asks for a new one, so the query waits at most for a small frame."""
        rerender = getattr(self.viewer, "_trigger_rerender", None)
        if rerender is not None:
            rerender()

    # ------------------------------------------------------------------------------------------
    # pointer callbacks

    def click(self, click: ViewerClick) -> None:
        """A click on the render: inspects or toggles what it hits, as the panel's mode says."""
        started = clock.perf_counter()
        self.last_click = click
        self._interrupt_render()
        origin = torch.tensor([click.origin], dtype=torch.float32)
        direction = torch.tensor([click.direction], dtype=torch.float32)
        if self.mode == INSPECT:
            self.inspect(origin, direction, started)
        elif self.mode in (PICK_CLASS, PICK_INSTANCE):
            self.pick(origin, direction)
            self.latency = clock.perf_counter() - started

    def inspect(
        self, origin: torch.Tensor, direction: torch.Tensor, started: Optional[float] = None
    ) -> tuple[PointInspection, Optional[Paths]]:
        """Inspects the ray (origin, direction) [1, 3] at the current time; draws its path if it hits a surface.
        ``started``: when the click arrived (``time.perf_counter``), for :attr:`latency`."""
        started = clock.perf_counter() if started is None else started
        time = self.current_time()
        with querying(self._model, self._lock()):
            (found,) = inspect_rays(self._model, origin, direction, time)
            paths = None
            if found.surface:
                point = torch.tensor([found.point])
                paths = integrate_paths(self._model, point, torch.tensor([found.moving]), time)
        text = found.describe()
        number = len(self.inspections) + 1
        if paths is not None:
            label = found.instance_name or found.class_name
            if self.layer is not None:
                self.layer.add(paths, 0, f"{number}: {label}", self.current_time())
            motion = (paths.points[0, 1:] - paths.points[0, :-1]).norm(dim=-1).sum()
            text += f"  \npath {number} drawn: {len(paths.frame_times)} frames, length {motion:.3f}"
        self.panel.show(text)
        self.latency = clock.perf_counter() - started
        self.paths.append(paths)
        self.inspections.append(found)  # last: a new inspection means the answer is complete
        return found, paths

    def pick(self, origin: torch.Tensor, direction: torch.Tensor) -> Optional[PointInspection]:
        """Toggles the class (or instance, by the mode) that the ray hits at the current time."""
        with querying(self._model, self._lock()):
            (found,) = inspect_rays(self._model, origin, direction, self.current_time())
        if not found.surface:
            self.panel.show(found.describe())
            return found
        if self.mode == PICK_INSTANCE and found.instance_id:
            ((name, ticked),) = self.panel.toggle_instances([found.instance_id])
        else:
            name, ticked = found.class_name, self.panel.toggle_class(found.class_id)
        self.panel.show(f"**{name}** {'ticked' if ticked else 'unticked'} (clicked at t = {found.time:.3f})")
        return found

    def box(self, selection: ViewerRectSelect) -> list[tuple[str, bool]]:
        """A dragged box: toggles every instance that covers at least ``BOX_MIN_HITS`` of its sampled rays."""
        started = clock.perf_counter()
        camera = self.get_camera(BOX_HEIGHT, None) if self.viewer is not None else None  # type: ignore[arg-type]
        if camera is None:
            return []
        self._interrupt_render()
        (u0, v0), (u1, v1) = selection.min_bounds, selection.max_bounds
        width, height = float(camera.width[0, 0]), float(camera.height[0, 0])
        cols = max(2, min(BOX_MAX_SIDE, round((u1 - u0) * width)))
        rows = max(2, min(BOX_MAX_SIDE, round((v1 - v0) * height)))
        us, vs = torch.linspace(u0, u1, cols) * width, torch.linspace(v0, v1, rows) * height
        coords = torch.stack(torch.meshgrid(vs, us, indexing="ij"), dim=-1).reshape(-1, 2)
        rays = camera.generate_rays(camera_indices=0, coords=coords)
        with querying(self._model, self._lock()):
            found = inspect_rays(self._model, rays.origins, rays.directions, self.current_time())
        hits = torch.tensor([f.instance_id or 0 for f in found if f.surface], dtype=torch.long)
        counts = torch.bincount(hits, minlength=1) if hits.numel() else torch.zeros(1, dtype=torch.long)
        picked = [i for i in range(1, len(counts)) if counts[i] >= BOX_MIN_HITS]
        toggled = self.panel.toggle_instances(picked)
        names = ", ".join(f"{name} ({'ticked' if ticked else 'unticked'})" for name, ticked in toggled)
        self.panel.show(f"Box: {names}" if toggled else "Box: no instance inside.")
        self.latency = clock.perf_counter() - started
        return toggled
