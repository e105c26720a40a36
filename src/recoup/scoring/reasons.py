"""Agent-readable wording of reason codes, in Chinese and English."""

from __future__ import annotations

from typing import Literal

Locale = Literal["zh", "en"]

_REPAYMENT_STATUS = {
    "PAY_0": ("最近一期", "the latest month"),
    "PAY_2": ("2 个月前", "two months ago"),
    "PAY_3": ("3 个月前", "three months ago"),
    "PAY_4": ("4 个月前", "four months ago"),
    "PAY_5": ("5 个月前", "five months ago"),
    "PAY_6": ("6 个月前", "six months ago"),
}
_BILL_AMOUNT_MONTHS = {f"BILL_AMT{month}": month for month in range(1, 7)}
_PAYMENT_AMOUNT_MONTHS = {f"PAY_AMT{month}": month for month in range(1, 7)}

REASON_WORDING: dict[str, dict[Locale, str]] = {
    # Collection features computed from the portfolio (scoring/features.py).
    "days_past_due": {"zh": "逾期天数较长", "en": "Many days past due"},
    "bucket": {"zh": "逾期阶段较深", "en": "Deep delinquency bucket"},
    "balance": {"zh": "欠款余额较高", "en": "High outstanding balance"},
    "overdue_amount": {"zh": "逾期金额较高", "en": "High overdue amount"},
    "principal_share": {
        "zh": "本金占比不利",
        "en": "Unfavourable share of principal in the balance",
    },
    "utilisation": {"zh": "额度使用率较高", "en": "High credit-limit utilisation"},
    "months_on_book": {"zh": "开户时间较短", "en": "Short time on book"},
    "product": {"zh": "产品类型回款率偏低", "en": "Product type with lower repayment"},
    "payment_ratio_1m": {"zh": "近 1 个月还款比例低", "en": "Little repaid in the last month"},
    "payment_ratio_3m": {
        "zh": "近 3 个月还款比例低",
        "en": "Little repaid in the last three months",
    },
    "payment_ratio_6m": {"zh": "近 6 个月还款比例低", "en": "Little repaid in the last six months"},
    "months_delinquent_12m": {
        "zh": "近 12 个月多次逾期",
        "en": "Delinquent in many of the last twelve months",
    },
    "days_since_last_payment": {
        "zh": "距上次还款时间较长",
        "en": "Long time since the last payment",
    },
    "last_payment_amount": {"zh": "上次还款金额较小", "en": "Small last payment"},
    "promises_made": {"zh": "承诺还款记录不利", "en": "Unfavourable promise-to-pay history"},
    "promises_kept": {"zh": "兑现的还款承诺较少", "en": "Few promises to pay kept"},
    "promises_broken": {"zh": "有违约的还款承诺", "en": "Broken promises to pay"},
    "promises_made_90d": {
        "zh": "近 90 天多次承诺还款",
        "en": "Several promises to pay in the last 90 days",
    },
    "promises_broken_180d": {
        "zh": "近 180 天有违约的还款承诺",
        "en": "Broken promises to pay in the last 180 days",
    },
    "promise_kept_ratio": {"zh": "还款承诺兑现比例低", "en": "Few promises to pay were kept"},
    "days_since_broken_promise": {
        "zh": "最近有违约的还款承诺",
        "en": "A promise to pay was broken recently",
    },
    "consecutive_broken_promises": {
        "zh": "连续违约还款承诺",
        "en": "Promises to pay broken in a row",
    },
    "plans_broken_365d": {
        "zh": "近一年有违约的分期还款计划",
        "en": "Broken payment plans in the last year",
    },
    "on_plan": {"zh": "分期还款计划状态不利", "en": "Payment plan status is unfavourable"},
    "contact_attempts_30d": {
        "zh": "近 30 天联系次数较多",
        "en": "Many contact attempts in the last 30 days",
    },
    "right_party_contacts_90d": {
        "zh": "近 90 天与本人通话较少",
        "en": "Few conversations with the debtor in the last 90 days",
    },
    "days_since_right_party_contact": {
        "zh": "长时间未联系到本人",
        "en": "Long time since the debtor was last reached",
    },
    "valid_self_contact": {
        "zh": "缺少有效的本人联系方式",
        "en": "No valid contact point for the debtor",
    },
    "age_band": {"zh": "年龄段回款率偏低", "en": "Age band with lower repayment"},
    "region": {"zh": "地区回款率偏低", "en": "Region with lower repayment"},
    "customer_type": {"zh": "客户类型回款率偏低", "en": "Customer type with lower repayment"},
    # The UCI Taiwan credit-card data used for benchmarks and external-file training.
    "LIMIT_BAL": {"zh": "授信额度较低", "en": "Low credit limit"},
    "SEX": {"zh": "客户属性不利", "en": "Customer attribute is unfavourable"},
    "EDUCATION": {"zh": "教育程度分组不利", "en": "Education group is unfavourable"},
    "MARRIAGE": {"zh": "婚姻状况分组不利", "en": "Marital-status group is unfavourable"},
    "AGE": {"zh": "年龄段回款率偏低", "en": "Age band with lower repayment"},
    **{
        name: {"zh": f"{zh}还款逾期", "en": f"Repayment was late {en}"}
        for name, (zh, en) in _REPAYMENT_STATUS.items()
    },
    **{
        name: {
            "zh": f"{month} 个月前账单金额不利",
            "en": f"Bill amount {month} month(s) ago is unfavourable",
        }
        for name, month in _BILL_AMOUNT_MONTHS.items()
    },
    **{
        name: {"zh": f"{month} 个月前还款金额较小", "en": f"Small payment {month} month(s) ago"}
        for name, month in _PAYMENT_AMOUNT_MONTHS.items()
    },
}


def reason_text(feature: str, *, locale: Locale = "en") -> str:
    """Word a reason code for an agent; unknown features get a generic sentence."""
    wording = REASON_WORDING.get(feature)
    if wording is not None:
        return wording[locale]
    if locale == "zh":
        return f"{feature} 不利"
    return f"{feature} is unfavourable"
