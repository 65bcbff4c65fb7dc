"""nerfstudio's viewer on a trained run, driven from Python: for scripted figures and tests.

:func:`start_viewer` sets the viewer up the way `ns-viewer` does (nerfstudio's ``Viewer``, the
training cameras, the "completed" state) but returns instead of serving forever, so a script can
change controls and render through the viewer's own render path (:func:`render_view`, which calls
``RenderStateMachine._render_img``: control-panel time, resolution and the model's
``get_outputs_for_camera``, exactly as a connected browser gets them).
"""

import threading
from typing import Optional

import numpy as np
import torch
from nerfstudio.cameras.cameras import Cameras, CameraType
from nerfstudio.engine.trainer import TrainerConfig
from nerfstudio.pipelines.base_pipeline import Pipeline
from nerfstudio.utils import writer
from nerfstudio.viewer.render_state_machine import RenderStateMachine
from nerfstudio.viewer.utils import CameraState
from nerfstudio.viewer.viewer import VISER_NERFSTUDIO_SCALE_RATIO, Viewer
from torch import Tensor
from viser import ClientHandle
from viser import transforms as vtf


def start_viewer(config: TrainerConfig, pipeline: Pipeline, step: int, port: Optional[int] = None) -> Viewer:
    """nerfstudio's viewer serving ``pipeline`` (as `ns-viewer --load-config` sets it up).

    Args:
        config: the run's config (from ``eval_setup``).
        pipeline: the loaded pipeline.
        step: checkpoint step, shown in the viewer.
        port: websocket/HTTP port; None = the config's (first free from 7007 if unset).
    """
    viewer_config = config.viewer
    if port is not None:
        viewer_config.websocket_port = port
    viewer = Viewer(
        viewer_config,
        log_filename=config.get_base_dir() / viewer_config.relative_log_filename,
        datapath=pipeline.datamanager.get_datapath(),
        pipeline=pipeline,
        train_lock=threading.Lock(),
    )
    config.logging.local_writer.enable = False
    writer.setup_local_writer(config.logging, max_iter=config.max_num_iterations, banner_messages=viewer.viewer_info)
    datamanager = pipeline.datamanager
    viewer.init_scene(
        train_dataset=datamanager.train_dataset,  # type: ignore[attr-defined]
        train_state="completed",
        eval_dataset=datamanager.eval_dataset,  # type: ignore[attr-defined]
    )
    viewer.update_scene(step=step)
    return viewer


def camera_state(cameras: Cameras, index: int, aspect: Optional[float] = None) -> CameraState:
    """The viewer camera state of camera ``index`` of ``cameras`` (pose and vertical field of view)."""
    height, width = float(cameras.height[index, 0]), float(cameras.width[index, 0])
    fov = 2.0 * float(np.arctan(height / (2.0 * float(cameras.fy[index, 0]))))
    c2w = cameras.camera_to_worlds[index].to(torch.float64)
    return CameraState(fov=fov, aspect=aspect or width / height, c2w=c2w, camera_type=CameraType.PERSPECTIVE)


def render_view(viewer: Viewer, state: CameraState) -> dict[str, Tensor]:
    """Renders ``state`` through the viewer's render path, at the control panel's time and "Max res".

    The render is at full quality (the state machine's "high" state), without a connected browser.
    """
    machine = RenderStateMachine(viewer, VISER_NERFSTUDIO_SCALE_RATIO, client=None)  # type: ignore[arg-type]
    machine.state = "high"
    return machine._render_img(state)


def point_client_camera(client: ClientHandle, state: CameraState, look_at: Tensor) -> None:
    """Moves a browser's viewer camera to ``state``, orbiting about ``look_at`` (world units)."""
    c2w = state.c2w.numpy()
    scale = VISER_NERFSTUDIO_SCALE_RATIO
    with client.atomic():
        client.camera.fov = state.fov
        client.camera.up_direction = c2w[:3, 1]
        client.camera.position = c2w[:3, 3] * scale
        client.camera.look_at = look_at.numpy() * scale
        client.camera.wxyz = (vtf.SO3.from_matrix(c2w[:3, :3]) @ vtf.SO3.from_x_radians(np.pi)).wxyz


def viewer_url(viewer: Viewer) -> str:
    """Address of the viewer page on this machine."""
    return f"http://localhost:{viewer.viser_server.get_port()}"
