// Decode QR symbols with jsQR (npm "jsqr", an independent decoder) for tests/test_qr.py.
// argv[2]: the directory holding node_modules/jsqr. stdin: a JSON list of symbols, each a list
// of rows of "0"/"1" (1 dark). Each is drawn at 4 pixels a module with a 4-module quiet zone.
// stdout: a JSON list with the decoded text of each symbol, or null when jsQR finds none.
import { createRequire } from "node:module";
import path from "node:path";
import { readFileSync } from "node:fs";

const require = createRequire(path.join(path.resolve(process.argv[2]), "package.json"));
const jsQR = require("jsqr");
const symbols = JSON.parse(readFileSync(0, "utf8"));
const scale = 4, quiet = 4;
const out = symbols.map((rows) => {
  const size = (rows.length + 2 * quiet) * scale;
  const pixels = new Uint8ClampedArray(size * size * 4).fill(255);
  rows.forEach((row, y) => {
    [...row].forEach((cell, x) => {
      if (cell !== "1") return;
      for (let dy = 0; dy < scale; dy++) {
        for (let dx = 0; dx < scale; dx++) {
          const px = (x + quiet) * scale + dx, py = (y + quiet) * scale + dy;
          const i = (py * size + px) * 4;
          pixels[i] = pixels[i + 1] = pixels[i + 2] = 0;
        }
      }
    });
  });
  const found = jsQR(pixels, size, size, { inversionAttempts: "dontInvert" });
  return found ? found.data : null;
});
process.stdout.write(JSON.stringify(out));
