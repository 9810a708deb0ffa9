"""`english_only`: the English part of the product's "中文 (English)" messages."""

import pytest

from app.messages import chinese_only, english_only


@pytest.mark.parametrize(
    ("text", "english"),
    [
        ("须为整数 (not a valid integer)", "not a valid integer"),
        ("item 2: 须为整数 (not a valid integer)", "item 2: not a valid integer"),
        ("须为以下之一 (must be one of): approve, reject", "must be one of: approve, reject"),
        ("XML 格式错误，第 3 行 (malformed XML: bad tag, line 3)", "malformed XML: bad tag, line 3"),
        ("流程文件无法解析 (a.bpmn (line 3): bad)", "a.bpmn (line 3): bad"),
        (
            "流程文件校验未通过 (deployment refused) — a.bpmn: 元素 'x' 的表达式不安全或无效 (element 'x': import in `f('y')`)",
            "deployment refused — a.bpmn: element 'x': import in `f('y')`",
        ),
        ("征信报告暂不可用：未配置征信系统 (credit report unavailable)", "credit report unavailable"),
        (
            "流程文件 贷款流程.bpmn 校验未通过 (deployment of 贷款流程.bpmn refused): 元素 '审批' 无效 (element '审批': bad)",
            "deployment of 贷款流程.bpmn refused: element '审批': bad",
        ),
        # quoted data is data, whatever its language: an element or a value an analyst wrote
        ("元素 'a' 无效 (element '审批': bad)", "element '审批': bad"),
        (
            "流程在 'd' 处出错 (the process failed at 'd': output 'x' = '金额(' is not of type number)",
            "the process failed at 'd': output 'x' = '金额(' is not of type number",
        ),
        # a "(" left open inside the English (a quoted expression) does not keep the Chinese
        (
            "元素 'r' 的表达式不安全或无效 (element 'r': '(' was never closed in `floor(min(a)`)",
            "element 'r': '(' was never closed in `floor(min(a)`",
        ),
    ],
)
def test_the_english_part_is_taken_with_the_neutral_text_around_it(text, english):
    assert english_only(text) == english


@pytest.mark.parametrize(
    "text",
    [
        "Not found (task)",  # already English
        "只接受照片 (JPEG/PNG) 或 PDF",  # brackets inside a Chinese sentence are not a translation
        "请选择文件",  # no English at all: better Chinese than nothing
        "元素 a 无效 (element 审批: bad)",  # Chinese in the English, neither quoted nor from the Chinese part
        "",
    ],
)
def test_text_that_is_not_made_of_pairs_is_left_as_it_is(text):
    assert english_only(text) == text


@pytest.mark.parametrize(
    ("bounds", "value", "expected"),
    [
        ({"min": 1}, 0, "须不小于 1 (must be at least 1)"),
        ({"max": 5}, 6, "须不大于 5 (must be at most 5)"),
        ({"min": 1, "max": 5}, 9, "须在 1 与 5 之间 (must be 1 to 5)"),
    ],
)
def test_range_messages_keep_english_words_out_of_the_chinese_part(bounds, value, expected):
    from marshmallow import ValidationError, validate

    with pytest.raises(ValidationError) as raised:
        validate.Range(**bounds)(value)
    assert raised.value.messages == [expected]


@pytest.mark.parametrize(
    ("text", "chinese"),
    [
        ("须为整数 (not a valid integer)", "须为整数"),
        ("item 2: 须为整数 (not a valid integer)", "item 2: 须为整数"),
        ("征信报告暂不可用：未配置征信系统 (credit report unavailable)", "征信报告暂不可用：未配置征信系统"),
        (
            "流程文件 a.bpmn 校验未通过 (deployment of a.bpmn refused): 元素 'x' 无效 (element 'x': bad)",
            "流程文件 a.bpmn 校验未通过: 元素 'x' 无效",
        ),
        ("只接受照片 (JPEG/PNG) 或 PDF", "只接受照片 (JPEG/PNG) 或 PDF"),  # brackets inside a sentence stay
        ("Not found (task)", "Not found (task)"),
        ("请选择文件", "请选择文件"),
    ],
)
def test_a_chinese_page_shows_the_chinese_part_alone(text, chinese):
    assert chinese_only(text) == chinese
