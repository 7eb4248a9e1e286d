// Chat templates: the model's own Jinja template (GGUF tokenizer.chat_template), or a
// file given with --chat-template, rendered with @huggingface/jinja. A model without
// one gets DEFAULT_CHAT_TEMPLATE (documented in configs/README.md).

import { Template } from '@huggingface/jinja';
import type { ChatMessage } from '../http/validate.js';

/**
 * The default: one block per message, `<|role|>` on its own line, the content, then the
 * end-of-sequence token; the generation prompt opens an assistant block. Plain text
 * markers keep it usable with any vocabulary, and the EOS after each turn teaches the
 * usual "stop at end of turn".
 */
export const DEFAULT_CHAT_TEMPLATE =
  // With tools: a system block listing them and how to call one (the format tools.ts reads back).
  "{% if tools %}<|system|>\nTools you can call, one <tool_call>\n{\"name\": ..., \"arguments\": {...}}\n</tool_call> block per call:\n" +
  "{% for tool in tools %}{{ tool['function'] | tojson }}\n{% endfor %}{{ eos_token }}\n{% endif %}" +
  "{% for message in messages %}<|{{ message['role'] }}|>\n{{ message['content'] }}" +
  "{% if message['tool_calls'] %}{% for call in message['tool_calls'] %}<tool_call>\n{{ call['function'] | tojson }}\n</tool_call>{% endfor %}{% endif %}" +
  "{{ eos_token }}\n{% endfor %}" +
  "{% if add_generation_prompt %}<|assistant|>\n{% endif %}";

export class ChatTemplateError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ChatTemplateError';
  }
}

export interface ChatTemplateOptions {
  bosToken: string;
  eosToken: string;
}

export interface RenderOptions {
  /** Open the assistant's turn after the messages (default true). */
  addGenerationPrompt?: boolean;
  /**
   * Assistant prefill: the last message is the assistant's and the reply continues it, so
   * the render stops right after its content (whatever the template puts after a turn,
   * end-of-turn tokens included, is cut).
   */
  continueFinal?: boolean;
  /** The template's `tools` variable (Hugging Face's shape); absent without tools. */
  tools?: unknown[];
}

// Marks the end of the prefilled message in the render; cut there. Private-use
// characters no template adds or strips.
const PREFILL_MARK = '\uE000relu-serve-prefill\uE001';

/**
 * A message as Hugging Face templates read it: tool calls with `arguments` as an object
 * (JSON text that does not parse stays a string), tool results with `tool_call_id`.
 */
function templateMessage(m: ChatMessage): { role: string; content: string; name?: string; tool_calls?: unknown[]; tool_call_id?: string } {
  const out: { role: string; content: string; name?: string; tool_calls?: unknown[]; tool_call_id?: string } = { role: m.role, content: m.content };
  if (m.name !== undefined) out.name = m.name;
  if (m.toolCalls) {
    out.tool_calls = m.toolCalls.map((c) => {
      let args: unknown = c.arguments;
      try {
        args = JSON.parse(c.arguments);
      } catch {
        /* left as text */
      }
      return { id: c.id, type: 'function', function: { name: c.name, arguments: args } };
    });
  }
  if (m.toolCallId !== undefined) out.tool_call_id = m.toolCallId;
  return out;
}

export class ChatTemplate {
  private readonly tpl: Template;

  /** Throws ChatTemplateError naming the origin when the template does not parse. */
  constructor(readonly source: string, readonly origin: string, private readonly tokens: ChatTemplateOptions) {
    try {
      this.tpl = new Template(source);
    } catch (err) {
      throw new ChatTemplateError(`chat template from ${origin} does not parse: ${(err as Error).message}`);
    }
  }

  /**
   * Renders a conversation followed by the assistant's turn. Errors the template raises
   * itself (e.g. "roles must alternate") are the request's fault; they come back as
   * ChatTemplateError for a 400.
   */
  render(messages: readonly ChatMessage[], opts: RenderOptions = {}): string {
    const continueFinal = opts.continueFinal === true;
    const list = messages.map(templateMessage);
    if (continueFinal) list[list.length - 1].content += PREFILL_MARK;
    let text: string;
    try {
      text = this.tpl.render({
        messages: list,
        add_generation_prompt: continueFinal ? false : opts.addGenerationPrompt ?? true,
        ...(opts.tools ? { tools: opts.tools } : {}),
        bos_token: this.tokens.bosToken,
        eos_token: this.tokens.eosToken,
        // raise_exception() is built into @huggingface/jinja; what it throws lands below.
      });
    } catch (err) {
      if (err instanceof ChatTemplateError) throw err;
      throw new ChatTemplateError(`the chat template (${this.origin}) failed on these messages: ${(err as Error).message}`);
    }
    if (!continueFinal) return text;
    const at = text.lastIndexOf(PREFILL_MARK);
    if (at < 0) throw new ChatTemplateError(`the chat template (${this.origin}) does not show the final assistant message, so it cannot be continued`);
    return text.slice(0, at);
  }
}
