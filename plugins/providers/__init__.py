"""mksap's providers: offline (rules), anthropic (Messages API), openai (Chat Completions, any
OpenAI-compatible server), and CLI tools."""

from mksap.contracts.hookspecs import Register


def register_providers(register: Register) -> None:
    from mksap_plugins.providers.offline import OfflineProvider

    register(OfflineProvider)
    from mksap_plugins.providers.cli_tools import ClaudeCodeProvider, CodexProvider, GeminiProvider

    for cli_provider in (ClaudeCodeProvider, CodexProvider, GeminiProvider):
        register(cli_provider)
    from mksap_plugins.providers.anthropic import AnthropicProvider

    register(AnthropicProvider)
    from mksap_plugins.providers.openai_compat import OpenAIProvider

    register(OpenAIProvider)
