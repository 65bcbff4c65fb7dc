"""Options of the Semantic Flow model (``--pipeline.model.*``): every switch and loss weight, with its default.

Kept apart from :mod:`semflow_ns.models.semflow_model` so the options read on their own; the model class is looked up
when a config is made (it imports this module). Configs saved before the options moved here name
``semflow_ns.models.semflow_model.SemanticFlowModelConfig``, which that module still exports.
"""

import dataclasses
from dataclasses import dataclass, field
from typing import Literal, Optional

from nerfstudio.models.base_model import ModelConfig

from semflow_ns.field_components.flow_attention import FlowAttentionConfig
from semflow_ns.field_components.frame_encoder import FrameEncoderConfig
from semflow_ns.field_components.scene_flow import SceneFlowFieldConfig
from semflow_ns.fields.encoding import PlaneEncodingConfig
from semflow_ns.fields.radiance_field import RadianceFieldConfig
from semflow_ns.model_components.adaptation import AdaptationConfig
from semflow_ns.model_components.pose_refinement import PoseRefinementConfig


def _model_class() -> type:
    from semflow_ns.models.semflow_model import SemanticFlowModel

    return SemanticFlowModel


@dataclass
class SemanticFlowModelConfig(ModelConfig):
    """Semantic Flow: static + dynamic radiance fields, scene flow, flow attention, semantic heads."""

    _target: type = field(default_factory=_model_class)
    near_plane: float = 0.05
    """Where sampling starts along a ray (world units), unless the scene gives `near`."""
    far_plane: float = 10.0
    """Where sampling ends (world units), unless the scene gives `far`."""
    render_from_near_plane: bool = True
    """Renders (evaluation, viewer, ns-render) sample from the near plane, as training does. False: from the
    camera, nerfstudio's default for NearFarCollider, which on real videos (a near plane from SfM) fills the
    untrained space in front of the scene with floaters."""
    scene_contraction: bool = False
    """Contract space outside the scene box; on automatically for scenes marked `unbounded` (real videos)."""
    unbounded_far_plane: float = 1000.0
    """Far plane of contracted (unbounded) scenes; samples beyond the box are spaced in disparity."""
    background_color: Literal["black", "white"] = "black"
    """Colour behind the last sample."""
    grid_space: Literal["box", "view", "auto"] = "auto"
    """Where the fields' plane grids live. box: the scene box (contracted beyond it for unbounded scenes). view:
    as the cameras see it, two angles from the cameras' mean centre and the inverse distance (see
    :class:`~semflow_ns.fields.encoding.ViewGrid`), so that a cell covers a few pixels wherever it is in view.
    auto (default): view for unbounded scenes whose cameras all share one centre (rotation-only poses: the box
    that holds their frustums gives cells tens of pixels wide; the view grid measured +1.8 to +3.1 dB PSNR on
    three such DAVIS clips), box otherwise (on clips with translating cameras the box did as well or better)."""
    num_proposal_samples: int = 64
    """Samples per ray for the proposal density."""
    num_samples: int = 16
    """Samples per ray for the static and dynamic fields in training (and so for the scene flow, the warped
    renders and the semantic branch's choice of samples). 16 since 2026-12-05: against 24, a step 1.2-1.3x
    faster with J&F at equal steps within the spread of runs on the demo and the shared clips, and PSNR about
    0.3 dB lower at equal steps (README, "Speed and training length")."""
    render_samples: Optional[int] = 24
    """Samples per ray outside training (evaluation, the viewer, ns-render, exports), placed by the same
    proposal sampler; None = `num_samples`. Rendering a 16-sample run with 24 gave the demo 0.33 dB more PSNR and
    dog and breakdance none (labels unchanged), at the render cost of the 24-sample default before 2026-12-05."""
    proposal_planes: PlaneEncodingConfig = field(
        default_factory=lambda: PlaneEncodingConfig(resolutions=(64,), num_components=8)
    )
    """Grid of the proposal density field."""
    proposal_warmup: int = 500
    """Steps over which proposal updates go from every step to every `proposal_update_every` steps."""
    proposal_update_every: int = 5
    """Proposal sampler update interval after warm-up."""
    static_field: RadianceFieldConfig = field(default_factory=RadianceFieldConfig)
    """Static radiance field (time independent)."""
    dynamic_field: RadianceFieldConfig = field(default_factory=RadianceFieldConfig)
    """Dynamic radiance field (time dependent, with blending weight)."""
    scene_flow: SceneFlowFieldConfig = field(default_factory=SceneFlowFieldConfig)
    """Scene-flow field and trajectory window."""
    encoder: FrameEncoderConfig = field(default_factory=FrameEncoderConfig)
    """CNN producing the per-frame features (trained from scratch)."""
    attention: FlowAttentionConfig = field(default_factory=FlowAttentionConfig)
    """Flow attention over trajectory tokens."""
    semantic_source: Literal["flow", "point"] = "flow"
    """flow: semantic head sees flow-aggregated features (the method); point: only the point's own
    field features (the paper's "dynamic NeRF + semantic head" baseline)."""
    semantic_field_features: Optional[bool] = None
    """With semantic-source flow: the dynamic semantic head also sees the dynamic field's features at the point
    (the paper concatenates its MLP's hidden state). Our fields are space-time grids, so these features
    describe where and when a point is, not what it looks like: with them the head can fit the labelled frames
    by memorising where and when, instead of carrying labels along the flow. None (default): False when the
    scene has video frames without training labels, True when every frame is labelled."""
    semantic_hidden_dim: int = 64
    """Width of the semantic heads."""
    semantic_samples: int = 4
    """In training, the dynamic semantic branch (feature aggregation, attention, head) runs on this many
    samples per ray, those with the largest rendering weights; their weights carry almost all of the
    rendered logits. 0 = every sample. Evaluation always uses every sample. 4 since 2026-12-05 (8 before): a
    9 % (car-shadow) to 18 % (demo) faster step; tracking-50 J&F within the spread of runs on the demo, car-shadow
    and dog, PSNR level on the demo and dog and 0.5 dB lower on car-shadow's mean of three runs (README, "Speed
    and training length")."""
    warped_ray_fraction: float = 0.25
    """Fraction of each batch's rays whose samples are warped to t-1 and t+1 and rendered there (warped colour,
    semantic consistency, cycle consistency). Each costs two more dynamic queries; 1.0 = every ray."""
    detach_trajectory_features: bool = False
    """Stop the semantic branch's gradient at the trajectory: features are sampled at, and displacements encoded
    from, detached trajectory points, so semantic losses reach the scene flow only through the renders from
    warped samples (semantic consistency). True is what the official code does (it detaches the sampled
    features); the frame encoder learns either way."""
    adaptation: AdaptationConfig = field(default_factory=AdaptationConfig)
    """Start from another run's frame encoder, attention and semantic heads (scene adaptation)."""
    detach_semantic_weights: bool = False
    """Detach the density weights when rendering logits (False = the paper's density-as-opacity prior)."""
    rgb_loss_mult: float = 3.0
    """Colour of the full (blended) render."""
    rgb_dynamic_loss_mult: float = 1.0
    """Colour of the dynamic field alone."""
    rgb_static_loss_mult: float = 1.0
    """Colour of the static field alone, on static pixels (the paper's stage-1 loss)."""
    rgb_warped_loss_mult: float = 1.0
    """Colour of the dynamic field rendered from samples warped to t-1 and t+1, against frame t (each)."""
    semantic_loss_mult: float = 0.16
    """Cross entropy of the full semantic render."""
    semantic_dynamic_loss_mult: float = 0.08
    """Cross entropy of the dynamic field's semantic render (all pixels)."""
    semantic_static_loss_mult: float = 0.08
    """Cross entropy of the static field's semantic render, on static pixels."""
    semantic_consistency_loss_mult: float = 0.1
    """Cross entropy of semantics rendered from samples warped to t-1 and t+1 against frame t's labels (each)."""
    semantic_propagation_loss_mult: Optional[float] = 0.0
    """Cross entropy of semantics rendered from samples warped to t-1 and t+1 against the dynamic semantics
    rendered at t, on rays of frames without labels (each): carries labels along the scene flow, frame by frame,
    into the unlabelled frames (outward from the labelled ones). Not in the paper. Off by default since 2026-12-06:
    with the labels carried along the optical flow it drew trails of the object over a moving background
    (kite-surf's sea), and none of the gates below made it reliably better (README, "Label propagation off" and "Only
    where labels are sparse"); ``configs/label-propagation.txt`` turns it on (0.3). None (configs saved before):
    0.3 when the scene has video frames without training labels (and some with), else 0, ungated, as those runs
    were trained."""
    semantic_propagation_outward: bool = True
    """Label propagation only outward from the labelled frames: frame t teaches t±1 only when t±1 is farther from
    every labelled frame than t (False: in both directions)."""
    semantic_propagation_flow_tolerance: float = float("inf")
    """Label propagation only on rays whose scene flow follows the image: the optical flow it induces (through the
    ray's mean warped point) lies within this many pixels of the estimated optical flow, where that estimate passed
    its forward-backward check (inf, the default: every ray that sees the dynamic part). Only matters with
    propagation on; 1 px scored best on tracking-first with one seed and not with the next, and lost car-shadow
    with half the frames labelled on two seeds (README, "Only where labels are sparse")."""
    semantic_propagation_min_confidence: float = 0.0
    """Label propagation only where the teacher is sure: the dynamic semantics rendered at t give their most likely
    class at least this probability (0, the default: no such gate). Early in training every prediction is unsure,
    so the gate also holds propagation back until the semantics have formed. Only matters with propagation on. With
    the 1 px flow gate, 0.9 stopped the collapses of gated propagation on a second seed but scored level with no
    propagation on tracking-first over two seeds (README, "The default on two seeds, and propagation only where the
    teacher is sure")."""
    semantic_propagation_max_labelled_fraction: float = 1.0
    """Label propagation runs only on scenes where at most this fraction of the video frames keeps training labels
    (e.g. 0.2: the first frame only, a few keyframes); 1 (default): whenever some frames are unlabelled. Only
    matters with propagation on."""
    static_semantics_from_moving: Optional[bool] = None
    """The semantic losses of the full render also teach the static semantic head on pixels known to move (moving
    classes of the labels, a moving class carried along the optical flow, or the motion mask; True is the paper's
    loss). False: the static head is held fixed there (the static density still takes the gradient), so a moving
    object's labels do not teach the static head its class where the object once was, which it would then predict
    there at every time in the unlabelled frames. None (default): False when the scene has video frames without
    training labels (and some with), else True."""
    static_logit_bound: float = 10.0
    """The static semantic head's logits are bounded softly to within this (``bound * tanh(logit / bound)``; 0:
    unbounded). A head whose labels hold a single class (a DAVIS clip: the static head, held fixed on moving
    pixels, sees only the background) is driven by the optimiser to ever larger margins (10^5 after 600 steps
    on car-shadow), and then any static weight left on a moving object outvotes the dynamic field there."""
    semantic_class_balance: float = 0.0
    """Weights each class in the semantic cross entropy (labels and labels carried along the optical flow) by its
    frequency to the power minus this, the frequencies being the class shares of the labelled rays trained on so
    far, normalised so that those rays weigh 1 on average (0, the default: every ray weighs 1; 1: every class
    weighs as much in total). A DAVIS object covers 2-10 % of a frame, and far from its labelled frame the
    model mostly misses parts of it; but 0.5 lowered the six-clip tracking-first mean (seed 0: 0.632 against
    0.673), gaining on kite-surf and losing blackswan (README, "Classes weighed by their rarity")."""
    token_consistency_loss_mult: Optional[float] = None
    """Contrastive loss on the frame features along the trajectories (flow semantics): the feature of a ray's
    surface point in its own frame must pick out the same point's features in the neighbouring frames of its
    window among those of the other rays of the batch (InfoNCE, both ways,
    :func:`~semflow_ns.model_components.losses.token_consistency_loss`). It asks the frame encoder for features
    that stay the same along the motion over the whole video, labelled or not, so that what the semantic head
    learnt on the labelled frames holds on the others. Not in the paper. 0 = off; None (default):
    :data:`PARTIAL_LABEL_TOKEN_CONSISTENCY` when some video frames have training labels and some do not, else 0
    (:func:`resolve_label_defaults`)."""
    token_consistency_temperature: float = 0.1
    """Temperature of ``token_consistency_loss_mult``'s cosine similarities."""
    token_consistency_rays: int = 512
    """Rays (their most visible semantic sample each) taking part in ``token_consistency_loss_mult`` per step."""
    flow_label_loss_mult: float = 1.0
    """Labels carried along the optical flow into frames without labels
    (:mod:`~semflow_ns.data.datasets.flow_labels`), trained like labels (the full, dynamic and static renders,
    with the semantic losses' weights) times this and a weight that halves every ``flow_label_half_life``
    frames the labels travelled. Not in the paper. Only where some frames have labels and others not (0 = off)."""
    flow_label_half_life: float = 3.0
    """Frames of optical-flow travel after which a carried label counts half (see ``flow_label_loss_mult``)."""
    flow_label_unchecked_hops: float = 3.0
    """Extra frames of travel charged to a carried label for every hop whose optical flow failed the
    forward-backward check at the pixel (occlusions, and motion too fast for the flow to agree with itself: a
    dancer's legs, a car's front). Such labels are right far less often, but dropping them left fast-moving
    objects without labels next to the labelled frames, where 2D propagation is best (tracking-first,
    README "Label-subset tasks"). inf: they get no weight (before 2026-12-06)."""
    depth_loss_mult: float = 0.05
    """Depth supervision where the scene measures depth (SfM points of each frame, ``sparse_depth_path``; depth
    maps, ``depth_path``): confidence-weighted L1 of log z-depth, rendered against measured (0 = off). Scenes
    without depth are not affected."""
    optical_flow_loss_mult: float = 0.02
    """L1 (pixels) between induced and estimated optical flow, each direction."""
    two_frame_flow_loss_mult: float = 0.0
    """L1 (pixels) between the optical flow induced over two frames (the warped rays' samples moved by two steps
    of the scene flow, seen from frame t±2) and the estimated one-frame flows chained over the same two frames,
    each direction. Not in the paper. 0 = off."""
    static_optical_flow_loss_mult: float = 0.0
    """L1 (pixels) between the optical flow that the camera's own motion induces at the static field's surface
    (its weighted mean sample, seen from the neighbouring frame) and the estimated optical flow, on pixels known
    to be static, each direction. Not in the paper: the dynamic field's flow loss gives it depth from motion
    stereo, while the static field otherwise learns depth from colour alone (on the demo its walls came out
    17-19 % too near without this loss, 3 % at 0.02, but tracking-50 J&F fell by 0.04). No effect where the
    cameras only rotate. 0 (default) = off; 0.02 is the measured setting."""
    flow_min_accumulation: float = 0.05
    """Rays whose dynamic weights sum to at most this are left out of the optical-flow loss; on the others the
    induced flow follows the weighted mean of the warped points (normalised by the accumulated weight)."""
    cycle_loss_mult: float = 1.0
    """Forward-backward cycle consistency of the scene flow."""
    slow_flow_loss_mult: float = 0.01
    """Scene-flow magnitude."""
    temporal_smooth_loss_mult: float = 0.1
    """Scene-flow acceleration (forward + backward)."""
    spatial_smooth_loss_mult: float = 0.1
    """Scene-flow differences between neighbouring samples on a ray."""
    static_flow_loss_mult: float = 0.5
    """Rendered scene-flow magnitude (L1, normalised units) on pixels of static classes: they do not move."""
    blend_loss_mult: float = 0.1
    """Rendered dynamic mask against the motion mask of the labels."""
    sparsity_loss_mult: float = 0.001
    """Entropy of the dynamic weights and of the blending weights."""
    interlevel_loss_mult: float = 1.0
    """Proposal sampler fit (nerfstudio's interlevel loss)."""
    distortion_loss_mult: float = 0.002
    """Distortion loss on the final weights (mip-NeRF 360)."""
    instance_loss_mult: float = 0.08
    """Cross entropy of rendered instance ids, full and dynamic renders (scenes with instance labels)."""
    eval_foreground_only: bool = False
    """Score semantics with every static class merged into class 0 (the paper's foreground protocol)."""
    default_render_time: float = 0.0
    """Time in [0, 1] at which cameras without times are rendered (nerfstudio 1.1.5's `ns-render interpolate`
    drops them); camera times outside [0, 1] are clamped. Either is reported once per model."""
    remove_classes: tuple[str, ...] = ()
    """Render-time edit (viewer, ns-render, ns-eval, exports; never training): classes removed from the scene.
    `semflow-render --remove-classes` sets it for one render; the viewer panel changes it live."""
    remove_instances: tuple[str, ...] = ()
    """Render-time edit: instances (names or ids) removed from the scene."""
    highlight_classes: tuple[str, ...] = ()
    """Render-time edit: if set, everything but these classes is dimmed in `rgb`."""
    camera_optimizer: PoseRefinementConfig = field(default_factory=PoseRefinementConfig)
    """Refinement of the video's camera poses in training (nerfstudio's camera optimizer; param group
    `camera_opt`). Mode auto (default): SO3xR3 for scenes marked `approximate_poses`, off otherwise."""


FIELD_RESOLUTIONS = (64, 128)
"""Plane scales of the static and dynamic fields, unless :func:`field_resolutions` adds :data:`FINE_SCALE`."""
FINE_SCALE = 256
"""The third plane scale of the static and dynamic fields on larger frames in a box grid."""
FINE_SCALE_MIN_PIXELS = 256
"""Long side (pixels) of the video's frames above which the fields get :data:`FINE_SCALE`."""


def field_resolutions(frame_size: int, view_grid: bool = False) -> tuple[int, ...]:
    """Plane scales of the static and dynamic fields for a video whose frames are ``frame_size`` pixels on their
    long side, when the config leaves them empty (the default); ``view_grid``: the grids live in the cameras' view
    (``grid_space``, :class:`~semflow_ns.fields.encoding.ViewGrid`) instead of the scene box.

    In the scene box, 128 cells give a 480-pixel frame about four pixels per cell (about eight in the contracted
    space of a real clip, whose box fills half of each grid axis), too coarse for its texture. On car-shadow (480 x
    270, tracking-50, two seeds) a third scale of 256 cells made a step about 1.2x as costly and still raised PSNR
    on the unlabelled frames by 0.8 and 1.7 dB, and J&F by 0.06 and 0.19, at equal training time (README, "A finer
    grid scale on real clips"). The view grid already puts a few pixels in a 128-cell grid's cell wherever the
    scene is; there the third scale lowered J&F on both seeds of camel and breakdance, so view grids keep two
    scales, as do frames of at most 256 pixels (the demo).
    """
    fine = frame_size > FINE_SCALE_MIN_PIXELS and not view_grid
    return FIELD_RESOLUTIONS + ((FINE_SCALE,) if fine else ())


def resolve_field_resolutions(
    config: SemanticFlowModelConfig, frame_size: int, view_grid: bool = False
) -> SemanticFlowModelConfig:
    """``config`` with the static and dynamic fields' empty plane resolutions set by :func:`field_resolutions`."""
    resolved = {}
    for name in ("static_field", "dynamic_field"):
        field_config = getattr(config, name)
        if not field_config.planes.resolutions:
            planes = dataclasses.replace(field_config.planes, resolutions=field_resolutions(frame_size, view_grid))
            resolved[name] = dataclasses.replace(field_config, planes=planes)
    return dataclasses.replace(config, **resolved) if resolved else config


PARTIAL_LABEL_TOKEN_CONSISTENCY = 0.01
"""Token-consistency weight on scenes with frames without training labels, when the option is left to the data
(README, "Frame features that stay with the point")."""
PARTIAL_LABEL_PROPAGATION = 0.3
"""Label propagation weight on scenes with frames without training labels, for configs that leave it to the data
(None: the default before 2026-12-06, with neither gate)."""


def partial_labels(labelled: Optional[list[bool]]) -> bool:
    """Whether some video frames keep training labels and some do not (``labelled``: one flag per frame, None when
    not known)."""
    return labelled is not None and any(labelled) and not all(labelled)


def over_label_limit(config: SemanticFlowModelConfig, labelled: Optional[list[bool]]) -> bool:
    """Whether labels are partial but cover more than ``semantic_propagation_max_labelled_fraction`` of the
    frames, so that label propagation does not run."""
    if not partial_labels(labelled):
        return False
    return sum(labelled) > config.semantic_propagation_max_labelled_fraction * len(labelled)


def resolve_label_defaults(config: SemanticFlowModelConfig, labelled: Optional[list[bool]]) -> SemanticFlowModelConfig:
    """``config`` with the options left to the data (None) decided by which video frames keep training labels.

    With labels on some frames only (a label subset, a video labelled on a few frames) the default model has a
    dynamic semantic head that sees the flow features only, frame features held to their point along the
    trajectories (token consistency) and a static head held fixed on moving pixels (and a
    config saved with label propagation left to the data gets :data:`PARTIAL_LABEL_PROPAGATION`, outward from the
    labelled frames). Label propagation, when on, runs only with partial labels within
    ``semantic_propagation_max_labelled_fraction`` (:func:`over_label_limit`). With every frame labelled (or
    none, or unknown) every frame's labels correct the static head where a moving object once was.
    """
    partial = partial_labels(labelled)
    resolved = {}
    if config.semantic_propagation_loss_mult is None:  # saved before the gates existed: trained without them
        resolved["semantic_propagation_loss_mult"] = PARTIAL_LABEL_PROPAGATION if partial else 0.0
        resolved["semantic_propagation_flow_tolerance"] = float("inf")
        resolved["semantic_propagation_max_labelled_fraction"] = 1.0
    elif labelled is not None and (not partial or over_label_limit(config, labelled)):
        resolved["semantic_propagation_loss_mult"] = 0.0  # no frame to propagate from or to, or labels not sparse
    if config.semantic_field_features is None:
        resolved["semantic_field_features"] = not partial
    if config.static_semantics_from_moving is None:
        resolved["static_semantics_from_moving"] = not partial
    if config.token_consistency_loss_mult is None:
        resolved["token_consistency_loss_mult"] = PARTIAL_LABEL_TOKEN_CONSISTENCY if partial else 0.0
    return dataclasses.replace(config, **resolved) if resolved else config
