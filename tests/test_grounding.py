"""Quotes end up verbatim from the article, within the word limits, or are refused."""

from news_reader.extraction.grounding import ground_quote

ARTICLE = (
    "Shares in Acme rose 5% on Monday.\n\nThe company said its \u201cbest quarter ever\u201d came from strong sales "
    "of rocket skates in Europe and Asia, and it raised its forecast for the full year."
)


def ground(quote: str, low: int = 3, high: int = 25) -> str | None:
    return ground_quote(quote, ARTICLE, low, high)


def test_an_exact_quote_is_returned_as_written_in_the_article():
    assert ground("its forecast for the full year") == "its forecast for the full year"


def test_case_spacing_and_typographic_quotes_are_tolerated_and_the_article_text_returned():
    assert ground('the company said its  "Best quarter ever"') == "The company said its \u201cbest quarter ever\u201d"


def test_a_near_verbatim_quote_is_snapped_to_the_article_span():
    expected = "strong sales of rocket skates in Europe and Asia"
    assert ground("strong sale of rocket skates in Europe and Asia") == expected


def test_a_quote_with_dropped_words_is_snapped_to_the_article_sentence():
    article = "Time Warner said on Friday that it now owns 8% of search-engine Google. But its own business lost."
    result = ground_quote("TimeWarner now owns 8% of search-engine Google.", article, 8, 25)
    assert result == "that it now owns 8% of search-engine Google"


def test_characters_whose_lower_case_is_longer_do_not_shift_the_quote():
    article = "\u0130stanbul \u0130zmir \u0130nan. " + ARTICLE
    assert ground_quote("its forecast for the full year", article, 3, 25) == "its forecast for the full year"


def test_an_invented_quote_is_refused():
    assert ground("Acme will close all its factories next year") is None


def test_an_empty_quote_is_refused():
    assert ground(' " ') is None


def test_a_short_quote_is_widened_with_the_following_words():
    assert ground("raised its forecast", low=7) == "raised its forecast for the full year"


def test_a_short_quote_at_the_end_is_widened_backwards():
    assert ground("full year", low=4) == "for the full year"


def test_a_long_quote_is_cut_to_the_word_limit():
    quote = "The company said its best quarter ever came from strong sales of rocket skates"
    assert ground(quote, high=5) == "The company said its \u201cbest"


def test_a_quote_spanning_paragraphs_keeps_the_article_line_breaks():
    result = ground("on Monday. The company said")
    assert result == "on Monday.\n\nThe company said"
    assert result in ARTICLE
