"""The model families of the zoo; importing this package registers every model."""

from mmzoo.models import cifar_multimodal  # noqa: F401
from mmzoo.models import image_text  # noqa: F401
from mmzoo.models import pretrained_fusion  # noqa: F401
from mmzoo.models import feature_fusion  # noqa: F401
from mmzoo.models import early_fusion  # noqa: F401
from mmzoo.models import graph_fusion  # noqa: F401
from mmzoo.models import multitask  # noqa: F401
from mmzoo.models import recognition  # noqa: F401
from mmzoo.models import retrieval  # noqa: F401
from mmzoo.models import fusion_classifier  # noqa: F401
