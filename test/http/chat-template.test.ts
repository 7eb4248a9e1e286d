import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ChatTemplate, ChatTemplateError, DEFAULT_CHAT_TEMPLATE } from '../../server/chat/template.js';

const toks = { bosToken: '<s>', eosToken: '</s>' };

test('default template renders roles, EOS after each turn and the assistant prompt', () => {
  const t = new ChatTemplate(DEFAULT_CHAT_TEMPLATE, 'default', toks);
  const s = t.render([{ role: 'system', content: 'Be brief.' }, { role: 'user', content: 'Hi' }]);
  assert.equal(s, '<|system|>\nBe brief.</s>\n<|user|>\nHi</s>\n<|assistant|>\n');
});

test('a llama-2 style template with raise_exception works and its errors surface', () => {
  const llama2 =
    "{{ bos_token }}{% for message in messages %}{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}" +
    "{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{% endif %}" +
    "{% if message['role'] == 'user' %}{{ '[INST] ' + message['content'] + ' [/INST]' }}{% else %}{{ ' ' + message['content'] + eos_token }}{% endif %}{% endfor %}";
  const t = new ChatTemplate(llama2, 'gguf', toks);
  assert.equal(t.render([{ role: 'user', content: 'a' }, { role: 'assistant', content: 'b' }, { role: 'user', content: 'c' }]), '<s>[INST] a [/INST] b</s>[INST] c [/INST]');
  assert.throws(() => t.render([{ role: 'assistant', content: 'x' }]), (e: Error) => e instanceof ChatTemplateError && /alternate/.test(e.message));
});

test('a template that does not parse is refused naming its origin', () => {
  assert.throws(() => new ChatTemplate('{% for x in %}', 'file t.jinja', toks), /file t\.jinja/);
});

test('a message name reaches the template', () => {
  const t = new ChatTemplate('{% for m in messages %}[{{ m.name }}]{{ m.content }}{% endfor %}', 'test', toks);
  assert.equal(t.render([{ role: 'user', content: 'hi', name: 'ann' }], { addGenerationPrompt: false }), '[ann]hi');
});
