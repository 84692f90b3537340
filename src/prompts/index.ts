/**
 * Prompt sets: load a YAML prompt set, expand it into deterministic, de-duplicated prompt rows
 * (eval split first, then train), write them as a Parquet prompt table, read row ranges back.
 * Grammar and rules: docs/prompts.md.
 */
export { loadPromptSet, type PromptSet, type Category, type Edit, type Slot, type SlotItem } from './grammar.ts';
export { expandPromptSet, promptId, MAX_ATTEMPTS, type PromptRow, type ExpandOptions } from './expand.ts';
export { writePromptTable, readPromptRows, ROW_GROUP_ROWS, type PromptTableSummary, type WriteOptions, type ReadOptions } from './table.ts';
export { Prng } from './prng.ts';
export { parseYamlBytes, parseYamlText, readBounded, MAX_YAML_BYTES, MAX_YAML_ALIASES, PROTOTYPE_KEYS, type ParsedYaml } from './yaml.ts';
