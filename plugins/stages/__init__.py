"""mksap's stages: parse -> nlp -> critique / keypoints / tables -> cloze -> validate -> assemble."""

from mksap.contracts.hookspecs import Register


def register_stages(register: Register) -> None:
    from mksap_plugins.stages.assemble import AssembleStage
    from mksap_plugins.stages.cloze import ClozeStage
    from mksap_plugins.stages.critique import CritiqueStage
    from mksap_plugins.stages.keypoints import KeyPointsStage
    from mksap_plugins.stages.nlp import NlpStage
    from mksap_plugins.stages.parse import ParseStage
    from mksap_plugins.stages.tables import TablesStage
    from mksap_plugins.stages.validate import ValidateStage

    for stage in (
        ParseStage,
        NlpStage,
        CritiqueStage,
        KeyPointsStage,
        TablesStage,
        ClozeStage,
        ValidateStage,
        AssembleStage,
    ):
        register(stage)
