// collection_internal.h: helpers shared by collection.cc and
// collection_search.cc. Internal to index/.
#ifndef DIFFRANK_INDEX_COLLECTION_INTERNAL_H_
#define DIFFRANK_INDEX_COLLECTION_INTERNAL_H_

#include <string>
#include <vector>

#include "absl/strings/string_view.h"
#include "index/filter.h"
#include "index/sqlite_db.h"

namespace diffrank::index::internal {

// BindParams binds filter values starting at parameter `first`; returns the
// next free parameter index.
int BindParams(Stmt& s, const std::vector<FilterValue>& params, int first);

// FtsMatchExpression turns free text into an FTS5 MATCH expression of quoted
// terms joined by OR, so no user text is ever FTS5 syntax (quotes, NEAR, *,
// -, AND/OR/NOT, column filters are just words). With drop_stopwords,
// English stopwords are dropped unless the text has nothing else. Returns ""
// when the text has no searchable term.
std::string FtsMatchExpression(absl::string_view text, bool drop_stopwords);

}  // namespace diffrank::index::internal

#endif  // DIFFRANK_INDEX_COLLECTION_INTERNAL_H_
