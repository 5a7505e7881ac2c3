import { describe, expect, it } from 'vitest';
import { extractCodeBlocks } from './code-blocks.js';

describe('extractCodeBlocks (code_extractor.rs fenced blocks)', () => {
  it('gives byte offsets like Rust, lower-cases the language, defaults to "text", skips tiny blocks', () => {
    const text = 'héllo ✓\n```Python\nprint(1)\n```\n```\nplain words here\n```\n```bash\nx\n```';
    const { blocks, dropped } = extractCodeBlocks(text, 10);
    expect(dropped).toBe(0);
    expect(blocks.map((b) => b.language)).toEqual(['python', 'text']);
    const py = blocks[0]!;
    const bytes = Buffer.from(text);
    expect(bytes.subarray(py.start_pos, py.end_pos).toString()).toBe('```Python\nprint(1)\n```');
    expect(py.code).toBe('print(1)');
    expect(py.metadata).toBeNull();
  });

  it('scores like calculate_execution_confidence and sorts highest first', () => {
    // bash: base 0.4 + 2 lines 0.2 + intent "run this" within 200 bytes 0.2 + "run" nearby 0.1 = 0.9; text: 0.1 + 0.2 + 0.2 + 0.1 = 0.6 (its window reaches "run this" too).
    const text = 'Please run this:\n```bash\necho a\necho b\n```\n```\nsome\noutput\n```';
    const { blocks } = extractCodeBlocks(text, 10);
    expect(blocks.map((b) => [b.language, b.execution_confidence])).toEqual([
      ['bash', 0.9],
      ['text', 0.6],
    ]);
  });

  it('keeps at most maxBlocks and counts the rest', () => {
    const text = Array.from({ length: 5 }, (_, i) => `\`\`\`bash\necho ${i}\n\`\`\``).join('\n');
    const { blocks, dropped } = extractCodeBlocks(text, 3);
    expect(blocks).toHaveLength(3);
    expect(dropped).toBe(2);
  });
});
