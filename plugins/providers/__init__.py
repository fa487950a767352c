"""mksap's providers: offline (rules), anthropic (Messages API), and CLI tools."""

from mksap.hookspecs import Register


def register_providers(register: Register) -> None:
    from mksap_plugins.providers.offline import OfflineProvider

    register(OfflineProvider)
