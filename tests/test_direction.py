"""The direction's probabilities read from token log-probabilities, and the confidence they give each analysis."""

import json
import math

import pytest
from openai.types.chat import ChatCompletionTokenLogprob

from news_reader.extraction.calibration import Calibration
from news_reader.extraction.direction import direction_probabilities, value_probabilities
from news_reader.extraction.pipeline import analyze
from tests.conftest import ACME_ANSWER, ARTICLE, GLOBEX_ANSWER
from tests.fake_llm import Reply, category_tokens


def answer_tokens(answer: dict, value_tokens: list[str], alternatives: dict[str, float], at: int = 0) -> list[dict]:
    """An answer's tokens as a server returns them: the JSON up to the direction's value (its opening quote
    included) in 5-character tokens, then `value_tokens`, of which the one at `at` has `alternatives` (token ->
    log-probability), then the rest of the JSON."""
    text = json.dumps(answer)
    head = text[: text.index(f'"{answer["stock_price_change"]}"', text.index('"stock_price_change"'))]
    rest = text[len(head) + len("".join(value_tokens)):]
    chunks = [head[i:i + 5] for i in range(0, len(head), 5)]

    def token(text: str, logprob: float = -0.01, top: dict[str, float] | None = None) -> dict:
        ranked = [{"token": t, "logprob": lp, "bytes": list(t.encode())} for t, lp in (top or {}).items()]
        return {"token": text, "logprob": logprob, "bytes": list(text.encode()), "top_logprobs": ranked}

    values = [token(t, alternatives[t], alternatives) if i == at else token(t) for i, t in enumerate(value_tokens)]
    return [token(t) for t in chunks] + values + [token(rest)]


def parsed(tokens: list[dict]) -> list[ChatCompletionTokenLogprob]:
    return [ChatCompletionTokenLogprob.model_validate(t) for t in tokens]


def test_the_first_token_of_the_value_gives_each_direction_its_share():
    tokens = answer_tokens({**ACME_ANSWER, "stock_price_change": "decrease"}, ['"de', 'crease"'],
                           {'"de': math.log(0.6), '"none': math.log(0.2), '"in': math.log(0.1), '"dec': math.log(0.05),
                            '" decrease': math.log(0.04)})
    probabilities = direction_probabilities(parsed(tokens))
    assert probabilities == pytest.approx({"decrease": 0.65 / 0.95, "none": 0.2 / 0.95, "increase": 0.1 / 0.95})


def test_a_value_that_starts_its_own_token_is_read_the_same_way():
    tokens = answer_tokens(ACME_ANSWER, ['"', "in", 'crease"'], {"in": math.log(0.5), 'none"': math.log(0.25),
                                                               "input": math.log(0.25)}, at=1)
    assert direction_probabilities(parsed(tokens)) == pytest.approx({"increase": 2 / 3, "decrease": 0.0,
                                                                      "none": 1 / 3})


def test_no_log_probabilities_or_no_direction_among_them_gives_none():
    assert direction_probabilities([]) is None
    tokens = answer_tokens(ACME_ANSWER, ['"', "in", 'crease"'], {"in": -0.1, "input": -3.0}, at=1)
    assert direction_probabilities(parsed(tokens))["increase"] == 1.0
    tokens[-3]["top_logprobs"], tokens[-3]["token"], tokens[-3]["bytes"] = [], "x", list(b"x")
    assert direction_probabilities(parsed(tokens)) is None  # the chosen token starts no direction


def test_each_analysis_carries_its_direction_probabilities_and_confidence(business_script, fake_settings):
    tokens = answer_tokens(ACME_ANSWER, ['"in', 'crease"'], {'"in': math.log(0.7), '"none': math.log(0.2),
                                                              '"de': math.log(0.1)})
    business_script.script("BusinessSpecificInfo:Acme Corp", Reply(content=json.dumps(ACME_ANSWER), logprobs=tokens))
    info = analyze(ARTICLE, fake_settings.model_copy(update={"direction_calibration": None}))
    acme, globex = info.business_info
    assert acme.direction_probabilities == pytest.approx({"increase": 0.7, "none": 0.2, "decrease": 0.1})
    assert acme.confidence == pytest.approx(0.7)
    assert (globex.direction_probabilities, globex.confidence) == (None, None)  # the server sent no logprobs
    analyses = [s.body for s in business_script.seen if "BusinessSpecificInfo" in json.dumps(s.body)]
    assert {(b["logprobs"], b["top_logprobs"]) for b in analyses} == {(True, 10)}


def test_top_logprobs_0_asks_for_none(business_script, fake_settings):
    info = analyze(ARTICLE, fake_settings.model_copy(update={"top_logprobs": 0}))
    assert [b.confidence for b in info.business_info] == [None, None]
    assert not any("logprobs" in s.body for s in business_script.seen)


def test_a_calibration_rescales_the_probabilities_and_the_most_probable_direction_is_answered(
        business_script, fake_settings, tmp_path):
    path = tmp_path / "calibration.json"
    path.write_text(Calibration(temperature=2.0, bias={"increase": -1.0, "decrease": 0.0, "none": 0.0},
                                fitted_on="a test").model_dump_json())
    tokens = answer_tokens(ACME_ANSWER, ['"in', 'crease"'], {'"in': math.log(0.7), '"none': math.log(0.2),
                                                              '"de': math.log(0.1)})
    business_script.script("BusinessSpecificInfo:Acme Corp", Reply(content=json.dumps(ACME_ANSWER), logprobs=tokens))
    acme, globex = analyze(ARTICLE, fake_settings.model_copy(update={"direction_calibration": path})).business_info
    weights = {"increase": math.exp(math.log(0.7) / 2 - 1), "none": math.exp(math.log(0.2) / 2),
               "decrease": math.exp(math.log(0.1) / 2)}  # 0.310, 0.447, 0.316 before normalising
    total = sum(weights.values())
    assert acme.direction_probabilities == pytest.approx({d: w / total for d, w in weights.items()})
    assert acme.stock_price_change == "none" and acme.confidence == pytest.approx(weights["none"] / total)
    assert globex.stock_price_change == GLOBEX_ANSWER["stock_price_change"]  # no probabilities: the model's answer


def test_the_shipped_calibration_was_fitted_on_dev():
    from news_reader.settings import LLMSettings

    shipped = Calibration.model_validate_json(LLMSettings(model="m").direction_calibration.read_text())
    assert "data/eval/dev.jsonl" in shipped.fitted_on and shipped.temperature > 0


@pytest.mark.parametrize(("p_true", "is_business", "steps"), [
    (0.47, True, 7),  # the model answered false, but its probability of true reaches 0.45
    (0.40, False, 2),
])
def test_the_classification_is_the_probability_of_true_against_its_threshold(
        business_script, fake_settings, p_true, is_business, steps):
    business_script.script("BusinessCategory", Reply(content='{"is_about_business": false}',
                                                     logprobs=category_tokens(p_true)))
    info = analyze(ARTICLE, fake_settings)
    assert (info.is_about_business, len(info.usage)) == (is_business, steps)


def test_the_probability_of_true_is_read_from_the_classification_answer():
    assert value_probabilities(parsed(category_tokens(0.3)), "is_about_business", ("true", "false")) == pytest.approx(
        {"true": 0.3, "false": 0.7})
