#!/usr/bin/env python3
"""Regenerates test/Fixtures/chat/templates.json: chat templates as real
models ship them (Llama-3, Qwen2, Mistral) and one that exercises more of
Jinja, rendered by transformers' apply_chat_template over several
conversations, with and without the generation prompt; an exception a
template raises is recorded as its message.

Needs transformers and jinja2 (the virtualenv of make-hf-fixtures.py). CI
and the tests never run this.

  /tmp/hf/bin/python scripts/make-chat-fixtures.py
"""

import json
import os

import transformers
from transformers import PreTrainedTokenizerFast

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.join(HERE, "..", "test", "Fixtures")

TEMPLATES = {
    "llama3": (
        "{% set loop_messages = messages %}{% for message in loop_messages %}"
        "{% set content = '<|start_header_id|>' + message['role'] + "
        "'<|end_header_id|>\n\n'+ message['content'] | trim + '<|eot_id|>' %}"
        "{% if loop.index0 == 0 %}{% set content = bos_token + content %}"
        "{% endif %}{{ content }}{% endfor %}{% if add_generation_prompt %}"
        "{{ '<|start_header_id|>assistant<|end_header_id|>\n\n' }}{% endif %}"),
    "qwen2": (
        "{% for message in messages %}{% if loop.first and messages[0]['role'] "
        "!= 'system' %}{{ '<|im_start|>system\nYou are a helpful assistant."
        "<|im_end|>\n' }}{% endif %}{{'<|im_start|>' + message['role'] + '\n' "
        "+ message['content'] + '<|im_end|>' + '\n'}}{% endfor %}"
        "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}"
        "{% endif %}"),
    "mistral": (
        "{{ bos_token }}{% for message in messages %}{% if (message['role'] == "
        "'user') != (loop.index0 % 2 == 0) %}{{ raise_exception('Conversation "
        "roles must alternate user/assistant/user/assistant/...') }}{% endif %}"
        "{% if message['role'] == 'user' %}{{ '[INST] ' + message['content'] + "
        "' [/INST]' }}{% elif message['role'] == 'assistant' %}"
        "{{ message['content'] + eos_token}}{% else %}{{ raise_exception('Only "
        "user and assistant roles are supported!') }}{% endif %}{% endfor %}"),
    # Block tags on their own indented lines (lstrip_blocks, trim_blocks),
    # '-' whitespace control, namespaces, slicing, filters, tests, methods.
    "features": """{%- set ns = namespace(system='', count=0) -%}
{%- if messages[0]['role'] == 'system' -%}
    {%- set ns.system = messages[0]['content'] | trim -%}
    {%- set rest = messages[1:] -%}
{%- else -%}
    {%- set rest = messages -%}
{%- endif -%}
{{ bos_token }}{% if ns.system %}<<SYS>>{{ ns.system }}<</SYS>>
{% endif %}
{% for m in rest %}
    {% set ns.count = ns.count + 1 %}
    {% if m.role == 'user' %}
  [{{ loop.index }}/{{ loop.length }}] USER: {{ m.content.strip() | upper if m.content.startswith('!') else m.content }}
    {% elif m.role == 'assistant' and m.tool is not defined %}
  ASSISTANT{{ ' (last)' if loop.last else '' }}: {{ m['content'] ~ eos_token }}
    {% else %}
  {{ m.role | capitalize }}: {{ m | tojson }}
    {% endif %}
{% endfor %}
{{- 'turns=' ~ ns.count ~ ' users=' ~ (rest | selectattr('role', 'equalto', 'user') | list | length) -}}
{% if add_generation_prompt %}

ASSISTANT:{% endif %}""",
}

CONVERSATIONS = [
    [{"role": "user", "content": "Hello!"}],
    [{"role": "system", "content": "  Be brief.  "},
     {"role": "user", "content": "What is 2+2?"}],
    [{"role": "user", "content": "Hi"},
     {"role": "assistant", "content": "Hello, how can I help?"},
     {"role": "user", "content": "!shout this"}],
    [{"role": "user", "content": "Café 日本語 😀 \"quotes\" and\nnewlines"},
     {"role": "assistant", "content": "  padded  "},
     {"role": "tool", "content": "{\"x\": 1}"}],
    [{"role": "assistant", "content": "I speak first"}],
]


def main():
    tok = PreTrainedTokenizerFast(
        tokenizer_file=os.path.join(ROOT, "tokenizers", "llama3-bytelevel",
                                    "tokenizer.json"),
        bos_token="<|begin_of_text|>", eos_token="<|eot_id|>")
    cases = []
    for name, template in TEMPLATES.items():
        for i, messages in enumerate(CONVERSATIONS):
            for generation in (True, False):
                case = {"template": name, "conversation": i,
                        "add_generation_prompt": generation}
                try:
                    case["rendered"] = tok.apply_chat_template(
                        messages, chat_template=template, tokenize=False,
                        add_generation_prompt=generation)
                except Exception as e:  # the template's raise_exception
                    case["error"] = str(e)
                cases.append(case)
    out = os.path.join(ROOT, "chat", "templates.json")
    os.makedirs(os.path.dirname(out), exist_ok=True)
    with open(out, "w", encoding="utf-8") as f:
        json.dump({"transformers_version": transformers.__version__,
                   "bos_token": tok.bos_token, "eos_token": tok.eos_token,
                   "templates": TEMPLATES, "conversations": CONVERSATIONS,
                   "cases": cases}, f, ensure_ascii=False, indent=1)
        f.write("\n")
    print(f"wrote {len(cases)} cases to {out}")
    for c in cases[-10:]:
        print(c.get("error") or repr(c["rendered"])[:300])


if __name__ == "__main__":
    main()
