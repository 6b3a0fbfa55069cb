"""Uses the gateway through the official `openai` SDK, as a user would, and
prints what it saw as one JSON object; the Rust test asserts on it.

Environment: PINCER_URL (http://127.0.0.1:PORT/v1), PINCER_TOKEN,
TOOL_MODEL and TOOL_MODEL_RESPONSES (models scripted to call a tool).
"""

import json
import os
import sys

import openai

URL = os.environ["PINCER_URL"]
TOKEN = os.environ["PINCER_TOKEN"]
client = openai.OpenAI(base_url=URL, api_key=TOKEN, max_retries=0, timeout=120)
seen = {"sdk_version": openai.__version__}


def chat_whole():
    raw = client.chat.completions.with_raw_response.create(
        model="openclaw",
        messages=[{"role": "user", "content": "What is the capital of France?"}],
        max_tokens=16,
        temperature=0,
        user="sdk-user",
    )
    c = raw.parse()
    seen["chat"] = {
        "text": c.choices[0].message.content,
        "finish": c.choices[0].finish_reason,
        "completion_tokens": c.usage.completion_tokens,
        "header_model": raw.headers.get("x-pincer-model"),
        "metadata_model": (c.to_dict().get("metadata") or {}).get("model"),
    }


def chat_stream():
    text, finish, usage = "", None, None
    stream = client.chat.completions.create(
        model="openclaw/main",
        messages=[{"role": "user", "content": "Say hello."}],
        max_tokens=16,
        temperature=0,
        stream=True,
        stream_options={"include_usage": True},
    )
    for chunk in stream:
        if chunk.usage is not None:
            usage = chunk.usage.completion_tokens
        for choice in chunk.choices:
            text += choice.delta.content or ""
            finish = choice.finish_reason or finish
    seen["chat_stream"] = {"text": text, "finish": finish, "completion_tokens": usage}


def responses_whole():
    r = client.responses.create(
        model="openclaw", input="Name a color.", max_output_tokens=16, temperature=0
    )
    seen["responses"] = {
        "text": r.output_text,
        "status": r.status,
        "types": [item.type for item in r.output],
        "output_tokens": r.usage.output_tokens,
    }


def responses_stream():
    kinds, text, final = [], "", None
    with client.responses.stream(
        model="openclaw", input="Name an animal.", max_output_tokens=16, temperature=0
    ) as stream:
        for event in stream:
            kinds.append(event.type)
            if event.type == "response.output_text.delta":
                text += event.delta
            # A reply cut by max_output_tokens ends in response.incomplete,
            # which get_final_response() does not accept (as with OpenAI).
            if event.type in ("response.completed", "response.incomplete"):
                final = event.response
    seen["responses_stream"] = {
        "text": text,
        "final_text": final.output_text,
        "first": kinds[0],
        "last": kinds[-1],
        "deltas": kinds.count("response.output_text.delta"),
    }


WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather in a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    },
}


def chat_tool_round_trip():
    messages = [{"role": "user", "content": "What is the weather in Paris?"}]
    first = client.chat.completions.create(model=os.environ["TOOL_MODEL"], messages=messages, tools=[WEATHER])
    call = first.choices[0].message.tool_calls[0]
    args = json.loads(call.function.arguments)
    messages.append(first.choices[0].message.model_dump(exclude_none=True))
    messages.append({"role": "tool", "tool_call_id": call.id, "content": f"sunny, 21 C in {args['city']}"})
    second = client.chat.completions.create(model=os.environ["TOOL_MODEL"], messages=messages, tools=[WEATHER])
    seen["chat_tools"] = {
        "finish": first.choices[0].finish_reason,
        "name": call.function.name,
        "args": args,
        "call_id": call.id,
        "answer": second.choices[0].message.content,
    }


def responses_tool_round_trip():
    tool = {"type": "function", **WEATHER["function"]}
    items = [{"role": "user", "content": "What is the weather in Paris?"}]
    first = client.responses.create(model=os.environ["TOOL_MODEL_RESPONSES"], input=items, tools=[tool])
    call = next(i for i in first.output if i.type == "function_call")
    items += [i.model_dump(exclude_none=True) for i in first.output]
    items.append({"type": "function_call_output", "call_id": call.call_id, "output": "sunny, 21 C"})
    second = client.responses.create(model=os.environ["TOOL_MODEL_RESPONSES"], input=items, tools=[tool])
    seen["responses_tools"] = {"name": call.name, "call_id": call.call_id, "answer": second.output_text}


def conversation():
    """A stable `user`: only the new message is sent each time, and the
    gateway keeps the conversation; a command answers without a model."""
    said = []
    for text in ("My favourite colour is teal. Reply with OK.", "What is my favourite colour?"):
        c = client.chat.completions.create(
            model="openclaw",
            messages=[{"role": "user", "content": text}],
            max_tokens=16,
            temperature=0,
            user="sdk-conversation",
        )
        said.append(c.choices[0].message.content)
    status = client.chat.completions.create(
        model="openclaw", messages=[{"role": "user", "content": "/status"}], user="sdk-conversation"
    )
    context = client.chat.completions.create(
        model="openclaw", messages=[{"role": "user", "content": "/context"}], user="sdk-conversation"
    )
    seen["conversation"] = {
        "said": said,
        "status": status.choices[0].message.content,
        "context": context.choices[0].message.content,
    }


def errors():
    bad = openai.OpenAI(base_url=URL, api_key="wrong-token", max_retries=0)
    try:
        bad.chat.completions.create(model="openclaw", messages=[{"role": "user", "content": "hi"}])
        seen["wrong_token"] = "no error"
    except openai.APIError as e:
        seen["wrong_token"] = type(e).__name__
    try:
        client.chat.completions.create(model="nobody/nothing", messages=[{"role": "user", "content": "hi"}])
        seen["unknown_model"] = {"error": "no error"}
    except openai.APIError as e:
        seen["unknown_model"] = {"error": type(e).__name__, "status": getattr(e, "status_code", None), "message": e.message}
    try:
        client.models.retrieve("nobody/nothing")
        seen["unknown_model_get"] = "no error"
    except openai.APIError as e:
        seen["unknown_model_get"] = type(e).__name__
    seen["models"] = [m.id for m in client.models.list()]


for step in (chat_whole, chat_stream, responses_whole, responses_stream, chat_tool_round_trip, responses_tool_round_trip, conversation, errors):
    try:
        step()
    except Exception as e:  # reported, so one broken step does not hide the others
        seen[step.__name__ + "_failed"] = f"{type(e).__name__}: {e}"

json.dump(seen, sys.stdout)
