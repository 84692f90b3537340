/** Most pairs one contact sheet may show (`pairgen preview --limit`); apart from the drawing code so the CLI can check it without loading sharp. */
export const MAX_SHEET_ROWS = 200;
