"""Optional LLM adjudicator over any OpenAI-compatible Chat Completions server (off by default)."""

from __future__ import annotations

import logging
from dataclasses import dataclass

import openai
from pydantic import SecretStr

from config.settings import Settings
from handlers.adjudicate import (
    Verdict,
    apply_verdict,
    build_messages,
    evidence_items,
    parse_answer,
    response_format,
)
from handlers.models import Explanation, Move

log = logging.getLogger(__name__)
DEFAULT_TIMEOUT_S = 8.0
# Local servers (Ollama, llama.cpp, vLLM) take no key, but the client insists on one.
_NO_KEY = "not-needed"


@dataclass(frozen=True)
class LLMConfig:
    """Where the adjudicator is and how long it may take."""

    base_url: str
    model: str
    api_key: SecretStr | None = None
    timeout_s: float = DEFAULT_TIMEOUT_S


class Adjudicator:
    """Asks the server for a verdict; on any failure the rule/model verdict stands."""

    def __init__(self, config: LLMConfig) -> None:
        self.config = config
        key = config.api_key.get_secret_value() if config.api_key else _NO_KEY
        self._client = openai.OpenAI(
            base_url=config.base_url,
            api_key=key or _NO_KEY,
            timeout=config.timeout_s,
            max_retries=0,  # a retry after a 429 or a timeout would blow the alert's deadline
        )

    def close(self) -> None:
        self._client.close()

    def adjudicate(self, move: Move, explanation: Explanation) -> Explanation:
        """A new Explanation from a checked answer, or the same one (the log says why)."""
        verdict = self._ask(move, explanation)
        if isinstance(verdict, str):
            log.warning(
                "LLM adjudicator (%s) not used for %s: %s; the %s verdict stands",
                self.config.model,
                move.symbol,
                verdict,
                explanation.cause,
            )
            return explanation
        log.info(
            "LLM adjudicator: %s %s -> %s (%.2f, cites %s)",
            move.symbol,
            explanation.cause,
            verdict.cause,
            verdict.confidence,
            ",".join(verdict.evidence_ids) or "nothing",
        )
        return apply_verdict(explanation, verdict)

    def _ask(self, move: Move, explanation: Explanation) -> Verdict | str:
        try:
            response = self._client.chat.completions.create(  # type: ignore[call-overload]
                model=self.config.model,
                messages=build_messages(move, explanation),
                response_format=response_format(),
                temperature=0,
            )
        except openai.APITimeoutError:
            return f"no answer within {self.config.timeout_s:g} s"
        except openai.RateLimitError:
            return "rate limited (HTTP 429)"
        except openai.APIStatusError as exc:
            return f"server answered HTTP {exc.status_code}"
        except openai.APIConnectionError:
            return "server unreachable"
        except openai.OpenAIError as exc:
            return f"client error ({type(exc).__name__})"
        if not response.choices:
            return "answer has no choices"
        content = response.choices[0].message.content
        return parse_answer(content, set(evidence_items(explanation)))


def from_settings(
    base_url: str | None,
    model: str | None,
    api_key: SecretStr | None,
    timeout_s: float = DEFAULT_TIMEOUT_S,
) -> Adjudicator | None:
    """The adjudicator when MARKETBOT_LLM_BASE_URL and MARKETBOT_LLM_MODEL are set, else None."""
    if not base_url or not model:
        if base_url and not model:
            log.warning(
                "MARKETBOT_LLM_BASE_URL is set without MARKETBOT_LLM_MODEL: adjudicator off"
            )
        return None
    return Adjudicator(LLMConfig(base_url, model, api_key, timeout_s))


def adjudicator_from(settings: Settings) -> Adjudicator | None:
    """The adjudicator the settings ask for (MARKETBOT_LLM_*), or None when it is off."""
    return from_settings(
        settings.llm_base_url,
        settings.llm_model,
        settings.llm_api_key,
        settings.llm_timeout_seconds,
    )
