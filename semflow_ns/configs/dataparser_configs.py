"""Registration of the `semflow-data`, `dynnerf-data` and `semflow-multi-data` DataParsers (entry point `nerfstudio.dataparser_configs`).

Kept in a module of its own with only data-side imports: nerfstudio loads dataparser entry points
while its datamanager module is half imported, so importing the trainer or pipeline here would be
circular.
"""

from nerfstudio.plugins.registry_dataparser import DataParserSpecification

from semflow_ns.data.dataparsers.dynnerf_dataparser import DynNeRFDataParserConfig
from semflow_ns.data.dataparsers.multi_scene import MultiSceneDataParserConfig
from semflow_ns.data.dataparsers.semflow_dataparser import SemanticFlowDataParserConfig

semflow_data = DataParserSpecification(
    config=SemanticFlowDataParserConfig(),
    description="dynamic scene in the semflow format (transforms.json with times, labels and optical flow)",
)

dynnerf_data = DataParserSpecification(
    config=DynNeRFDataParserConfig(),
    description="DynNeRF/NSFF scene folder (poses_bounds.npy, images_2/, SegmentationClass*/, labelmap.txt, flow/)",
)

semflow_multi_data = DataParserSpecification(
    config=MultiSceneDataParserConfig(),
    description="several scenes for semantic-flow-multi (semflow or DynNeRF folders with one class list)",
)
