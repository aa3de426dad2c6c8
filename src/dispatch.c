/*
 * Run-time ISA choice, made once: at the first use, the ISA FASTACT_ISA
 * names if this CPU runs it, else the highest one it runs (isa.h lists them).
 * Every caller, C or Python, sees that same choice; fa_set_isa changes it
 * afterwards (the tests run every ISA with it).
 */
#include <ctype.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "fastact.h"
#include "isa.h"
#include "kernels.h"

#if FA_ISA_TARGETS
#define FA_CPU(feature) __builtin_cpu_supports(feature)
#else
#define FA_CPU(feature) 0
#endif

/* Each ISA's kernel tables (kernels_<isa>.c; NULL where not compiled) and
 * CPU test. */
#define FA_ISA_DECLARE_(name, target, cpu_test)                                \
    extern const fa_kernels *const fa_kernels_##name;                          \
    static int cpu_runs_##name(void) { return cpu_test; }
FA_ISA_LIST(FA_ISA_DECLARE_)

typedef struct {
    const char *name;
    const fa_kernels *const *kernels;
    int (*cpu_runs)(void);
} isa_row;

#define FA_ISA_ROW_(name, target, cpu_test) {#name, &fa_kernels_##name, cpu_runs_##name},
static const isa_row isas[FA_ISA_COUNT] = {FA_ISA_LIST(FA_ISA_ROW_)};

/* -1 until chosen; then read on every kernel call, so an atomic load */
static int active_isa = -1;
static pthread_once_t choice_once = PTHREAD_ONCE_INIT;
static int environment_status = FA_ISA_ENV_UNSET;
static const char *environment_value = NULL;

int fa_isa_supported(int isa)
{
    if (isa < 0 || isa >= FA_ISA_COUNT || *isas[isa].kernels == NULL) {
        return 0;
    }
#if FA_ISA_TARGETS
    __builtin_cpu_init();       /* idempotent; needed before a constructor runs */
#endif
    return isas[isa].cpu_runs();
}

int fa_isa_best(void)
{
    for (int isa = FA_ISA_COUNT - 1; isa > 0; isa--) {
        if (fa_isa_supported(isa)) {
            return isa;
        }
    }
    return FA_ISA_baseline;
}

const char *fa_isa_name(int isa)
{
    return isa >= 0 && isa < FA_ISA_COUNT ? isas[isa].name : "unknown";
}

int fa_isa_from_name(const char *name)
{
    for (int isa = 0; isa < FA_ISA_COUNT; isa++) {
        if (strcmp(name, isas[isa].name) == 0) {
            return isa;
        }
    }
    return -1;
}

/* FASTACT_ISA's value without surrounding blanks, lowercased (ASCII), in
 * out[size]; 0 when it does not fit (no ISA name is that long). */
static int normalized(const char *value, char *out, size_t size)
{
    while (isspace((unsigned char)*value)) {
        value++;
    }
    size_t n = strlen(value);
    while (n > 0 && isspace((unsigned char)value[n - 1])) {
        n--;
    }
    if (n >= size) {
        return 0;
    }
    for (size_t i = 0; i < n; i++) {
        out[i] = (char)tolower((unsigned char)value[i]);
    }
    out[n] = '\0';
    return 1;
}

static void choose_isa(void)
{
    int isa = fa_isa_best();
    const char *value = getenv("FASTACT_ISA");
    char name[32];
    if (value != NULL) {
        /* a copy: the environment may change after this */
        environment_value = strdup(value);
    }
    if (environment_value == NULL || !normalized(environment_value, name, sizeof name)) {
        environment_status = environment_value == NULL ? FA_ISA_ENV_UNSET
                                                       : FA_ISA_ENV_UNKNOWN;
    }
    else if (name[0] == '\0' || strcmp(name, "auto") == 0 || strcmp(name, "best") == 0) {
        environment_status = FA_ISA_ENV_UNSET;
    }
    else if (fa_isa_from_name(name) < 0) {
        environment_status = FA_ISA_ENV_UNKNOWN;
    }
    else if (!fa_isa_supported(fa_isa_from_name(name))) {
        environment_status = FA_ISA_ENV_UNSUPPORTED;
    }
    else {
        environment_status = FA_ISA_ENV_APPLIED;
        isa = fa_isa_from_name(name);
    }
    __atomic_store_n(&active_isa, isa, __ATOMIC_RELEASE);
}

int fa_get_isa(void)
{
    int isa = __atomic_load_n(&active_isa, __ATOMIC_ACQUIRE);
    if (isa < 0) {
        pthread_once(&choice_once, choose_isa);
        isa = __atomic_load_n(&active_isa, __ATOMIC_ACQUIRE);
    }
    return isa;
}

int fa_set_isa(int isa)
{
    if (!fa_isa_supported(isa)) {
        return -1;
    }
    pthread_once(&choice_once, choose_isa);     /* so that it cannot undo this */
    __atomic_store_n(&active_isa, isa, __ATOMIC_RELEASE);
    return 0;
}

int fa_isa_environment(const char **value)
{
    pthread_once(&choice_once, choose_isa);
    if (value != NULL) {
        *value = environment_value;
    }
    return environment_status;
}

const fa_kernels *fa_kernels_for(int dtype) { return &(*isas[fa_get_isa()].kernels)[dtype]; }
