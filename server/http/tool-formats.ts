// How a model writes tool calls, read off its chat template (the template teaches the
// model the format, so it is the one place that says which one the model knows):
//
//   hermes   <tool_call>\n{"name": "f", "arguments": {...}}\n</tool_call>   (Hermes, Qwen;
//            also the built-in default template and any template we do not recognise)
//   llama3   {"name": "f", "parameters": {...}}   the whole reply, optionally after
//            <|python_tag|>; several calls separated by ';'   (Llama 3.1 / 3.2 JSON tool use)
//   mistral  [TOOL_CALLS][{"name": "f", "arguments": {...}}, ...]   (Mistral v3 tokenizers)
//
// Each format gives the reply grammar for required / named tool_choice (see tools.ts) and
// the markers the reply parser (tool-call-parser.ts) looks for.

export type ToolFormatName = 'hermes' | 'llama3' | 'mistral';

export interface ToolFormat {
  /** Key the call object's arguments go under in the grammar (the parser accepts either). */
  argsKey: 'arguments' | 'parameters';
  /** Wraps the GBNF of one call object into the reply's root rule. */
  root(call: string, parallel: boolean): string;
}

const lit = (s: string): string => JSON.stringify(s);

export const FORMATS: Record<ToolFormatName, ToolFormat> = {
  hermes: {
    argsKey: 'arguments',
    root: (call, parallel) => {
      const block = `${lit('<tool_call>\n')} ${call} ${lit('\n</tool_call>')}`;
      return parallel ? `root ::= block ("\\n" block)*\nblock ::= ${block}` : `root ::= ${block}`;
    },
  },
  llama3: {
    argsKey: 'parameters',
    root: (call, parallel) => (parallel ? `root ::= ${call} ("; " ${call})*` : `root ::= ${call}`),
  },
  mistral: {
    argsKey: 'arguments',
    root: (call, parallel) => `root ::= ${lit('[TOOL_CALLS][')} ${call}${parallel ? ` (", " ${call})*` : ''} "]"`,
  },
};

/**
 * The format a chat template teaches. Markers checked in order of how specific they are:
 * Mistral's [TOOL_CALLS] / [AVAILABLE_TOOLS] tokens, Hermes' <tool_call> tag, then the
 * Llama 3.1 signs (<|python_tag|>, the ipython role, its "parameters" instruction).
 */
export function detectToolFormat(template: string): ToolFormatName {
  if (template.includes('[TOOL_CALLS]') || template.includes('[AVAILABLE_TOOLS]')) return 'mistral';
  if (template.includes('<tool_call>')) return 'hermes';
  if (template.includes('<|python_tag|>') || template.includes('ipython') || /"parameters": dictionary/.test(template)) return 'llama3';
  return 'hermes';
}
