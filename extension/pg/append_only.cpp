/*
 * extension/pg/append_only.cpp
 *   See append_only.hpp.
 */
extern "C" {
#include "postgres.h"
#include "commands/trigger.h"
#include "fmgr.h"
}

#include "pg/append_only.hpp"

namespace keel {

void RefuseAppendOnlyChange(FunctionCallInfo fcinfo, const char *function, const char *table,
                            const char *rows, const char *hint) {
    if (!CALLED_AS_TRIGGER(fcinfo))
        ereport(ERROR, (errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
                        errmsg("%s must be called as a trigger", function)));
    TriggerData *trigdata = (TriggerData *)fcinfo->context;
    const char *op = TRIGGER_FIRED_BY_UPDATE(trigdata->tg_event)     ? "UPDATE"
                     : TRIGGER_FIRED_BY_DELETE(trigdata->tg_event)   ? "DELETE"
                     : TRIGGER_FIRED_BY_TRUNCATE(trigdata->tg_event) ? "TRUNCATE"
                                                                     : "this change";
    ereport(ERROR,
            (errcode(ERRCODE_INSUFFICIENT_PRIVILEGE), errmsg("%s is append-only", table),
             errdetail("%s of %s rows is refused for every role.", op, rows), errhint("%s", hint)));
    pg_unreachable();
}

} // namespace keel
