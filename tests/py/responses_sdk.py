"""The Responses and Conversations APIs with the official OpenAI Python SDK (pinned in
requirements.txt), against a running BuddahBot whose model is the repository's mock.

Starts nothing: it needs BUDDAHBOT_URL and BUDDAHBOT_TOKEN. The Rust test
`responses::the_openai_python_sdk_runs_responses_and_conversations` runs it; it exits non-zero
on the first failed check.
"""

import os
import time

import openai
from openai import OpenAI

client = OpenAI(base_url=os.environ["BUDDAHBOT_URL"] + "/api", api_key=os.environ["BUDDAHBOT_TOKEN"])
MODEL = "Hermes-4-70B"


def plain_and_streamed():
    plain = client.responses.create(model=MODEL, input="Say hi.")
    assert plain.id.startswith("resp_"), plain.id
    assert plain.status == "completed"
    assert plain.output_text

    numbers, text, completed = [], "", None
    with client.responses.stream(model=MODEL, input="Stream it.") as stream:
        for event in stream:
            numbers.append(event.sequence_number)
            if event.type == "response.output_text.delta":
                text += event.delta
        completed = stream.get_final_response()
    assert numbers == list(range(len(numbers))), numbers
    assert completed.output_text == text
    assert client.responses.retrieve(completed.id).output_text == text


def chain():
    first = client.responses.create(model=MODEL, input="one")
    second = client.responses.create(model=MODEL, input="two", previous_response_id=first.id)
    third = client.responses.create(model=MODEL, input="three", previous_response_id=second.id)
    assert third.previous_response_id == second.id
    items = client.responses.input_items.list(third.id)
    assert [item.content[0].text for item in items.data] == ["three"]
    client.responses.delete(third.id)
    try:
        client.responses.retrieve(third.id)
    except openai.NotFoundError:
        pass
    else:
        raise AssertionError("a deleted response is gone")


def conversation():
    conv = client.conversations.create(metadata={"topic": "demo"})
    assert conv.id.startswith("conv_")
    a = client.responses.create(model=MODEL, input="first question", conversation=conv.id)
    b = client.responses.create(model=MODEL, input="second question", conversation=conv.id)
    asc = client.conversations.items.list(conv.id, order="asc")
    texts = [(item.role, item.content[0].text) for item in asc.data]
    assert texts == [
        ("user", "first question"),
        ("assistant", a.output_text),
        ("user", "second question"),
        ("assistant", b.output_text),
    ], texts
    desc = client.conversations.items.list(conv.id)
    assert [i.id for i in desc.data] == [i.id for i in reversed(asc.data)]
    page = client.conversations.items.list(conv.id, order="asc", limit=2)
    assert len(page.data) == 2 and page.has_more
    rest = client.conversations.items.list(conv.id, order="asc", after=page.data[1].id)
    assert [i.id for i in rest.data] == [i.id for i in asc.data[2:]]


def background_stream_resumed():
    stream = client.responses.create(
        model=MODEL, input="Steady. [[mock tokens=40 inter_token_ms=15]]", background=True, stream=True
    )
    seen = []
    for event in stream:
        seen.append(event)
        if len(seen) == 6:
            break  # the client goes away
    stream.close()
    response_id = seen[0].response.id
    last = seen[-1].sequence_number
    text = "".join(e.delta for e in seen if e.type == "response.output_text.delta")
    numbers, completed = [], None
    for event in client.responses.retrieve(response_id, stream=True, starting_after=last):
        numbers.append(event.sequence_number)
        if event.type == "response.output_text.delta":
            text += event.delta
        if event.type == "response.completed":
            completed = event.response
    assert numbers == list(range(last + 1, last + 1 + len(numbers))), (last, numbers)
    assert completed is not None and completed.output_text == text


def background():
    started = client.responses.create(
        model=MODEL, input="Slowly. [[mock tokens=400 inter_token_ms=20]]", background=True
    )
    assert started.status == "in_progress"
    time.sleep(0.3)
    cancelled = client.responses.cancel(started.id)
    assert cancelled.status == "cancelled"
    assert cancelled.output[0].content[0].text


def errors():
    try:
        client.responses.create(model=MODEL, input="x", conversation="c", previous_response_id="resp_x")
    except openai.BadRequestError as err:
        assert err.body["param"] == "conversation", err.body
    else:
        raise AssertionError("conversation with previous_response_id is refused")


for check in (plain_and_streamed, chain, conversation, background_stream_resumed, background, errors):
    check()
    print(f"ok {check.__name__}")
