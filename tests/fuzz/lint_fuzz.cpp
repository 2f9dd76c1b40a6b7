// tests/fuzz/lint_fuzz.cpp: libFuzzer target for keel lint's file reader and
// rules. Any input is one migration file: it must give findings (syntax
// errors included), never crash, hang or leak (ASan and LeakSanitizer).
// Built and run by scripts/fuzz; what it finds is kept in tests/fuzz/corpus
// and replayed by the unit tests (LintFuzzCorpus).
#include "lint/lint.hpp"

#include <cstddef>
#include <cstdint>
#include <string>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    std::string text(reinterpret_cast<const char *>(data), size);
    keel::lint::Report report = keel::lint::LintText(text, "0001_fuzz.sql", {});
    (void)report.errors();
    return 0;
}
