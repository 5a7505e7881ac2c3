/**
 * Code blocks in an LLM's answer, for POST /api/llm/parse-execute. Follows
 * the fenced-block part of Terraphim's `CodeBlockExtractor`
 * (terraphim-ai `crates/terraphim_multi_agent/src/vm_execution/code_extractor.rs`,
 * commit 1d8da19736c8cbdd7415b8605cf842d91d40d4d9): the pattern
 * ```` ```(\w+)?\n([\s\S]*?)\n``` ````, language lower-cased ("text" when
 * absent), blocks under 3 non-blank characters skipped, the same confidence
 * score (language base, line count, definitions, imports, intent phrases
 * within 200 bytes, run/execute/try nearby, capped at 1.0), sorted by
 * confidence, highest first. Its inline-statement heuristics are not ported.
 * Positions are UTF-8 byte offsets like Rust's. Pure; no I/O.
 */
import type { CodeBlock } from './models.js';

const FENCED = /```(\w+)?\n([\s\S]*?)\n```/g;
const INTENT = [
  /(run|execute|try)\s+(this|the|it)/i,
  /(can|could|would)\s+you\s+(run|execute|try)/i,
  /(test|check|verify)\s+(this|the)\s+code/i,
  /(what\s+happens|what\s+would\s+happen)\s+if/i,
  /(does|will)\s+(this|it)\s+(work|run)/i,
];
const CONTEXT_BYTES = 200;

/** Fenced code blocks of `text`, at most `maxBlocks` (the rest counted in `dropped`). */
export function extractCodeBlocks(text: string, maxBlocks: number): { blocks: CodeBlock[]; dropped: number } {
  const bytes = Buffer.from(text, 'utf8');
  const blocks: CodeBlock[] = [];
  let dropped = 0;
  for (const m of text.matchAll(FENCED)) {
    const code = m[2] ?? '';
    if (code.trim().length < 3) continue;
    if (blocks.length >= maxBlocks) {
      dropped += 1;
      continue;
    }
    const language = (m[1] ?? 'text').toLowerCase();
    const start = Buffer.byteLength(text.slice(0, m.index));
    const end = start + Buffer.byteLength(m[0]);
    blocks.push({ language, code, execution_confidence: confidence(language, code, bytes, start), start_pos: start, end_pos: end, metadata: null });
  }
  // Stable sort, highest confidence first (Rust sort_by is stable too).
  blocks.sort((a, b) => b.execution_confidence - a.execution_confidence);
  return { blocks, dropped };
}

function confidence(language: string, code: string, text: Buffer, position: number): number {
  let c = 0;
  if (['python', 'javascript', 'bash'].includes(language)) c += 0.4;
  else if (['rust', 'go', 'java'].includes(language)) c += 0.3;
  else if (['text', 'plaintext'].includes(language)) c += 0.1;
  else c += 0.2;
  const lines = code.split('\n').length;
  if (lines > 1 && lines < 50) c += 0.2;
  if (code.includes('def ') || code.includes('function ') || code.includes('fn ')) c += 0.1;
  if (code.includes('import ') || code.includes('require(') || code.includes('use ')) c += 0.1;
  const context = text.subarray(Math.max(0, position - CONTEXT_BYTES), Math.min(text.length, position + CONTEXT_BYTES)).toString('utf8');
  if (INTENT.some((p) => p.test(context))) c += 0.2;
  const lower = context.toLowerCase();
  if (lower.includes('run') || lower.includes('execute') || lower.includes('try')) c += 0.1;
  return Math.min(1, Math.round(c * 1000) / 1000);
}
