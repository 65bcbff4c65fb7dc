"""Plane encodings, the scene normaliser and the space-time coordinate."""

import pytest
import torch
from nerfstudio.data.scene_box import SceneBox

from semflow_ns.fields.encoding import MultiScalePlanes, PlaneEncodingConfig, SceneNormalizer, ViewGrid, spacetime

CONFIG = PlaneEncodingConfig(resolutions=(4, 8), num_components=3)


@pytest.mark.parametrize("time_dependent, dim", [(False, 3), (True, 4)])
def test_output_width_is_components_times_scales(time_dependent, dim):
    encoding = MultiScalePlanes(CONFIG, time_dependent=time_dependent, num_frames=5)
    assert encoding.get_out_dim() == 6
    coords = torch.rand(2, 7, dim) * 2 - 1
    assert encoding(coords).shape == (2, 7, 6)


def test_constant_planes_give_their_product():
    """Each scale multiplies its planes' features: 3 planes for (x, y, z), 6 for (x, y, z, t)."""
    for time_dependent, dim, planes in ((False, 3, 3), (True, 4, 6)):
        encoding = MultiScalePlanes(CONFIG, time_dependent=time_dependent, num_frames=5)
        with torch.no_grad():
            for param in encoding.parameters():
                param.fill_(0.5)
        out = encoding(torch.rand(10, dim) * 2 - 1)
        assert torch.allclose(out, torch.full_like(out, 0.5**planes)), time_dependent


def test_a_new_time_dependent_encoding_does_not_depend_on_time():
    """Time planes start at 1, so a new dynamic field starts as a static one."""
    encoding = MultiScalePlanes(CONFIG, time_dependent=True, num_frames=5)
    xyz = torch.rand(10, 3) * 2 - 1
    early = encoding(spacetime(xyz, torch.zeros(10, 1)))
    late = encoding(spacetime(xyz, torch.full((10, 1), 0.9)))
    assert torch.allclose(early, late)


def test_time_resolution_defaults_to_one_cell_per_frame():
    planes = MultiScalePlanes(PlaneEncodingConfig(resolutions=(4,), num_components=2), True, num_frames=7)
    assert sorted(tuple(p.shape) for p in planes.parameters()) == [(2, 4, 4)] * 3 + [(2, 7, 4)] * 3
    fixed = MultiScalePlanes(PlaneEncodingConfig(resolutions=(4,), num_components=2, time_resolution=3), True, 7)
    assert sorted(tuple(p.shape) for p in fixed.parameters()) == [(2, 3, 4)] * 3 + [(2, 4, 4)] * 3


def test_gradients_reach_every_plane():
    encoding = MultiScalePlanes(CONFIG, time_dependent=True, num_frames=5)
    encoding(torch.rand(200, 4) * 2 - 1).sum().backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in encoding.parameters())


def test_spacetime_maps_time_to_minus_one_one():
    coords = spacetime(torch.zeros(3, 3), torch.tensor([[0.0], [0.5], [1.0]]))
    assert coords[:, 3].tolist() == [-1.0, 0.0, 1.0]
    assert coords.shape == (3, 4)


BOX = SceneBox(aabb=torch.tensor([[-1.0, 0.0, 2.0], [3.0, 2.0, 4.0]]))


def test_normaliser_maps_the_box_to_minus_one_one_and_back():
    normalizer = SceneNormalizer(BOX, contract=False)
    corners = normalizer.to_unit(BOX.aabb)
    assert corners.tolist() == [[-1.0, -1.0, -1.0], [1.0, 1.0, 1.0]]
    assert normalizer.to_unit(torch.tensor([1.0, 1.0, 3.0])).tolist() == [0.0, 0.0, 0.0]
    points = torch.randn(20, 3) * 5
    assert torch.allclose(normalizer.to_world(normalizer.to_unit(points)), points, atol=1e-5)


def test_grid_coordinates_clamp_or_contract():
    inside, outside = torch.tensor([[0.5, -0.25, 0.0]]), torch.tensor([[10.0, 0.0, -3.0]])
    bounded = SceneNormalizer(BOX, contract=False)
    assert bounded.grid_coords(inside).tolist() == inside.tolist()
    assert bounded.grid_coords(outside).tolist() == [[1.0, 0.0, -1.0]]
    unbounded = SceneNormalizer(BOX, contract=True)
    assert torch.allclose(unbounded.grid_coords(inside), inside / 2)  # the box fills half the grid
    far = unbounded.grid_coords(outside * 1000)
    assert far.abs().max() <= 1.0 and far.abs().max() > 0.99  # infinity folds onto the grid's border


def _panning_cameras(num_frames: int = 5, pan_degrees: float = 40.0, shift: float = 0.0) -> torch.Tensor:
    """OpenGL cameras at the origin (plus ``shift`` along x per frame) turning left to right about y."""
    c2w = []
    for i, angle in enumerate(torch.linspace(pan_degrees / 2, -pan_degrees / 2, num_frames).deg2rad()):
        c, s = float(torch.cos(angle)), float(torch.sin(angle))
        c2w.append([[c, 0.0, s, shift * i], [0.0, 1.0, 0.0, 0.0], [-s, 0.0, c, 0.0]])
    return torch.tensor(c2w)


HALF_FOV = torch.tensor([[0.5, 0.3]])  # radians, horizontal and vertical


def _corner_points(c2w: torch.Tensor, distance: float) -> torch.Tensor:
    """World points ``distance`` along the rays through each camera's image corners."""
    tan = HALF_FOV[0].tan()
    corners = torch.tensor([[sx * tan[0], sy * tan[1], -1.0] for sx in (-1, 1) for sy in (-1, 1)])
    dirs = torch.einsum("fij,kj->fki", c2w[:, :, :3], corners / corners.norm(dim=-1, keepdim=True))
    return (c2w[:, None, :, 3] + distance * dirs).reshape(-1, 3)


def test_the_view_grid_holds_everything_the_cameras_see_without_clamping():
    c2w = _panning_cameras()
    grid = ViewGrid(c2w, HALF_FOV.expand(len(c2w), 2), near=1.0)
    for distance in (1.0, 3.0, 50.0):
        coords = grid(_corner_points(c2w, distance))
        assert coords[:, :2].abs().max() < 1.0, "a corner of a frame fell outside the grid's angles"
        assert coords[:, :2].abs().max() > 0.85, "the grid's angles span much more than the video sees"
    # the angles fill the grid whatever the distance: a cell covers the same pixels near and far
    ray = torch.tensor([[0.3, 0.1, -1.0]])
    near, far = grid(2.0 * ray), grid(40.0 * ray)
    assert torch.allclose(near[:, :2], far[:, :2], atol=1e-6)
    assert near[0, 2] < far[0, 2]


def test_the_view_grid_distance_runs_from_the_near_bound_to_infinity():
    grid = ViewGrid(_panning_cameras(), HALF_FOV.expand(5, 2), near=2.0)
    distances = torch.tensor([0.5, 2.0, 4.0, 1e6])
    coords = grid(distances[:, None] * torch.tensor([[0.0, 0.0, -1.0]]))
    assert torch.allclose(coords[:, 2], torch.tensor([-1.0, -1.0, 0.0, 1.0]), atol=1e-5)


def test_moving_cameras_widen_the_view_grid_for_what_they_see_off_centre():
    still = ViewGrid(_panning_cameras(shift=0.0), HALF_FOV.expand(5, 2), near=1.0)
    moving = ViewGrid(_panning_cameras(shift=0.5), HALF_FOV.expand(5, 2), near=1.0)
    assert (moving.angle_half > still.angle_half).all()
    # a point the last (shifted) camera sees at twice the near distance stays inside the grid
    seen = _corner_points(_panning_cameras(shift=0.5)[-1:], 2.0)
    assert moving(seen)[:, :2].abs().max() < 1.0


def test_the_normaliser_uses_a_view_grid_for_the_fields_and_the_scene_flow():
    c2w = _panning_cameras()
    view = ViewGrid(c2w, HALF_FOV.expand(5, 2), near=1.0)
    normalizer = SceneNormalizer(BOX, contract=True, view=view)
    unit = torch.randn(10, 3, requires_grad=True)
    coords = normalizer.grid_coords(unit)
    assert torch.equal(coords, view(normalizer.to_world(unit)))
    assert normalizer.flow_coords(unit) is coords  # the same samples are mapped once
    assert torch.equal(normalizer.grid_coords(unit.detach().clone()), coords.detach())
    coords.sum().backward()
    assert torch.isfinite(unit.grad).all() and unit.grad.abs().sum() > 0  # trajectories get position gradients
